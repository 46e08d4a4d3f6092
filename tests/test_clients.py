"""Machine clients (a tenant's local systems): secrets rotated with an overlap window,
revocation, scope limits, per-client rate limits and last use, through the public API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.core.problems import Problem
from app.identity.callers import Grant, Principal
from app.identity.clients import OAuthError, effective_scopes
from app.identity.models import ApiClient
from app.identity.permissions import Permission
from app.identity.ratelimit import RateLimiter
from app.identity.schemas import DEFAULT_OVERLAP_SECONDS
from tests.conftest import Backend
from tests.platform import Credentials, Platform, fetch_token

PROBLEM = "application/problem+json"
P = Permission


# --- helpers -------------------------------------------------------------------------------


def _clients(tenant: str) -> str:
    return f"/api/v1/tenants/{tenant}/clients"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _create(http: httpx.AsyncClient, by: Credentials, tenant: str,
                  **fields: Any) -> httpx.Response:
    body = {"name": f"local system {uuid.uuid4().hex[:6]}", "roles": ["api_client"], **fields}
    return await http.post(_clients(tenant), headers=by.headers, json=body)


async def _new_client(http: httpx.AsyncClient, by: Credentials, tenant: str,
                      **fields: Any) -> dict[str, Any]:
    response = await _create(http, by, tenant, **fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _token(http: httpx.AsyncClient, client_id: str, secret: str,
                 scope: str | None = None) -> httpx.Response:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return await http.post("/oauth/token", data=data, auth=(client_id, secret))


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    body = _assert_problem(response, status, error.replace("_", "-"))
    assert body["error"] == error


async def _audit(http: httpx.AsyncClient, by: Credentials, tenant: str) -> list[dict[str, Any]]:
    response = await http.get(f"/api/v1/tenants/{tenant}/audit", headers=by.headers,
                              params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _principal_id(http: httpx.AsyncClient, token: str) -> str:
    me = await http.get("/api/v1/me", headers=_bearer(token))
    assert me.status_code == 200, me.text
    principal_id: str = me.json()["id"]
    return principal_id


def _near(value: str | None, expected: datetime, slack: float = 30) -> bool:
    assert value is not None
    return abs((datetime.fromisoformat(value) - expected).total_seconds()) < slack


# --- create, read, list --------------------------------------------------------------------


async def test_create_with_limits_then_read_and_list(platform: Platform,
                                                     client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    created = await _new_client(client, admin, province, scopes=["tenants:read", "forms:read"],
                                rate_limit_per_minute=120)
    assert created["client_secret"]
    assert created["scopes"] == ["forms:read", "tenants:read"]
    assert created["rate_limit_per_minute"] == 120
    assert created["last_used_at"] is None
    assert created["previous_secret_expires_at"] is None

    got = await client.get(f"{_clients(province)}/{created['client_id']}", headers=admin.headers)
    assert got.status_code == 200, got.text
    expected = {k: v for k, v in created.items() if k != "client_secret"}
    assert got.json() == expected
    assert "client_secret" not in got.json() and "secret_hash" not in got.text

    listed = await client.get(_clients(province), headers=admin.headers)
    assert expected in listed.json()["items"]

    plain = await _new_client(client, admin, province)
    assert plain["scopes"] is None and plain["rate_limit_per_minute"] is None


async def test_a_client_is_read_only_through_its_home_tenant(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    local = await _new_client(client, admin, commune)
    here = await client.get(f"{_clients(commune)}/{local['client_id']}", headers=admin.headers)
    assert here.status_code == 200, here.text
    elsewhere = await client.get(f"{_clients(province)}/{local['client_id']}",
                                 headers=admin.headers)
    _assert_problem(elsewhere, 404, "client-not-found")


async def test_last_used_at_is_the_last_token_request(platform: Platform,
                                                      client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province)
    url = f"{_clients(province)}/{local['client_id']}"
    assert (await client.get(url, headers=admin.headers)).json()["last_used_at"] is None

    failed = await _token(client, local["client_id"], "not-the-secret")
    _assert_oauth_error(failed, 401, "invalid_client")
    assert (await client.get(url, headers=admin.headers)).json()["last_used_at"] is None, (
        "a failed token request is not a use")

    ok = await _token(client, local["client_id"], local["client_secret"])
    assert ok.status_code == 200, ok.text
    used = (await client.get(url, headers=admin.headers)).json()["last_used_at"]
    assert _near(used, datetime.now(UTC))


# --- rotation ------------------------------------------------------------------------------


async def test_rotation_keeps_the_old_secret_for_the_overlap(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province)
    client_id, first = local["client_id"], local["client_secret"]
    url = f"{_clients(province)}/{client_id}"

    rotated = await client.post(f"{url}/secret", headers=admin.headers,
                                json={"overlap_seconds": 3600})
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    body = rotated.json()
    second = body["client_secret"]
    assert body["client_id"] == client_id and second and second != first
    assert _near(body["previous_secret_expires_at"], datetime.now(UTC) + timedelta(hours=1))
    shown = (await client.get(url, headers=admin.headers)).json()
    assert shown["previous_secret_expires_at"] == body["previous_secret_expires_at"]

    for secret in (first, second):
        response = await _token(client, client_id, secret)
        assert response.status_code == 200, response.text
        used = await client.get(f"/api/v1/tenants/{province}",
                                headers=_bearer(response.json()["access_token"]))
        assert used.status_code == 200, used.text

    # Rotating again with no overlap: the new secret alone works, at once.
    again = await client.post(f"{url}/secret", headers=admin.headers,
                              json={"overlap_seconds": 0})
    assert again.status_code == 200, again.text
    third = again.json()["client_secret"]
    assert again.json()["previous_secret_expires_at"] is None
    for secret in (first, second):
        _assert_oauth_error(await _token(client, client_id, secret), 401, "invalid_client")
    assert (await _token(client, client_id, third)).status_code == 200
    assert (await client.get(url, headers=admin.headers)).json()[
        "previous_secret_expires_at"] is None


async def test_rotation_without_a_body_uses_the_default_overlap(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province)
    rotated = await client.post(f"{_clients(province)}/{local['client_id']}/secret",
                                headers=admin.headers)
    assert rotated.status_code == 200, rotated.text
    assert _near(rotated.json()["previous_secret_expires_at"],
                 datetime.now(UTC) + timedelta(seconds=DEFAULT_OVERLAP_SECONDS))
    assert (await _token(client, local["client_id"], local["client_secret"])).status_code == 200


async def test_old_secret_fails_once_its_overlap_has_passed(
    platform: Platform, client: httpx.AsyncClient, backend: Backend
) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province)
    client_id, old = local["client_id"], local["client_secret"]
    rotated = await client.post(f"{_clients(province)}/{client_id}/secret",
                                headers=admin.headers, json={"overlap_seconds": 600})
    new = rotated.json()["client_secret"]
    assert (await _token(client, client_id, old)).status_code == 200

    # Let the window pass without sleeping: move its end into the past.
    engine = backend.superuser_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(update(ApiClient.__table__)
                               .where(ApiClient.__table__.c.client_id == client_id)
                               .values(previous_secret_expires_at=datetime.now(UTC)
                                       - timedelta(seconds=1)))
    finally:
        await engine.dispose()

    _assert_oauth_error(await _token(client, client_id, old), 401, "invalid_client")
    assert (await _token(client, client_id, new)).status_code == 200


# --- revocation ----------------------------------------------------------------------------


async def test_disabling_revokes_tokens_already_issued(platform: Platform,
                                                       client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province)
    token = (await _token(client, local["client_id"], local["client_secret"])).json()[
        "access_token"]
    assert (await client.get(f"/api/v1/tenants/{province}",
                             headers=_bearer(token))).status_code == 200

    url = f"{_clients(province)}/{local['client_id']}"
    revoked = await client.patch(url, headers=admin.headers, json={"status": "disabled"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "disabled"

    refused = await client.get(f"/api/v1/tenants/{province}", headers=_bearer(token))
    _assert_problem(refused, 401, "invalid-token")
    _assert_oauth_error(await _token(client, local["client_id"], local["client_secret"]),
                        401, "invalid_client")

    restored = await client.patch(url, headers=admin.headers, json={"status": "active"})
    assert restored.status_code == 200 and restored.json()["status"] == "active"
    assert (await client.get(f"/api/v1/tenants/{province}",
                             headers=_bearer(token))).status_code == 200

    actions = [(r["action"], r["before"]["status"], r["after"]["status"])
               for r in await _audit(client, admin, province)
               if r["resource_id"] == local["client_id"] and r["before"]]
    assert actions == [("client.disable", "active", "disabled"),
                       ("client.enable", "disabled", "active")]


async def test_a_client_cannot_disable_itself(platform: Platform,
                                              client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    response = await client.patch(f"{_clients(province)}/{admin.client_id}",
                                  headers=admin.headers, json={"status": "disabled"})
    _assert_problem(response, 409, "cannot-disable-self")
    assert (await client.get(f"/api/v1/tenants/{province}",
                             headers=admin.headers)).status_code == 200


# --- scopes --------------------------------------------------------------------------------


async def test_scope_limit_overrides_what_the_role_allows(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province, roles=["tenant_admin"],
                              scopes=["tenants:read"])
    token = await fetch_token(client, local["client_id"], local["client_secret"])

    me = (await client.get("/api/v1/me", headers=_bearer(token))).json()
    assert me["scopes"] == ["tenants:read"]
    assert (await client.get(f"/api/v1/tenants/{province}",
                             headers=_bearer(token))).status_code == 200
    blocked = await client.post("/api/v1/tenants", headers=_bearer(token), json={
        "code": f"C{uuid.uuid4().hex[:10].upper()}", "name": "x", "kind": "commune",
        "parent": province})
    _assert_problem(blocked, 403, "forbidden")

    _assert_oauth_error(await _token(client, local["client_id"], local["client_secret"],
                                     scope="tenants:read tenants:write"), 400, "invalid_scope")
    narrowed = await _token(client, local["client_id"], local["client_secret"],
                            scope="tenants:read")
    assert narrowed.status_code == 200, narrowed.text


async def test_a_token_can_ask_for_less_than_the_client_may_do(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province, roles=["tenant_admin"])
    child = {"name": "x", "kind": "commune", "parent": province}

    narrow = await _token(client, local["client_id"], local["client_secret"],
                          scope="tenants:read")
    assert narrow.status_code == 200, narrow.text
    narrow_token = narrow.json()["access_token"]
    assert (await client.get("/api/v1/me", headers=_bearer(narrow_token))).json()[
        "scopes"] == ["tenants:read"]
    blocked = await client.post("/api/v1/tenants", headers=_bearer(narrow_token),
                                json={**child, "code": f"C{uuid.uuid4().hex[:10].upper()}"})
    _assert_problem(blocked, 403, "forbidden")

    full = await fetch_token(client, local["client_id"], local["client_secret"])
    assert (await client.get("/api/v1/me", headers=_bearer(full))).json()["scopes"] is None
    allowed = await client.post("/api/v1/tenants", headers=_bearer(full),
                                json={**child, "code": f"C{uuid.uuid4().hex[:10].upper()}"})
    assert allowed.status_code == 201, allowed.text


def test_effective_scopes() -> None:
    read, write = P.TENANTS_READ, P.TENANTS_WRITE
    assert effective_scopes(None, None) is None
    assert effective_scopes(None, frozenset({read})) == {read}
    assert effective_scopes(["tenants:read", "gone:perm"], None) == {read}
    assert effective_scopes(["tenants:read", "tenants:write"], frozenset({read})) == {read}
    with pytest.raises(OAuthError) as raised:
        effective_scopes(["tenants:read"], frozenset({read, write}))
    assert raised.value.status == 400 and raised.value.extra["error"] == "invalid_scope"


async def test_scope_limit_can_be_changed_and_removed(platform: Platform,
                                                      client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province)
    url = f"{_clients(province)}/{local['client_id']}"
    limited = await client.patch(url, headers=admin.headers,
                                 json={"scopes": ["cases:read", "cases:read", "forms:read"]})
    assert limited.status_code == 200, limited.text
    assert limited.json()["scopes"] == ["cases:read", "forms:read"]
    token = await fetch_token(client, local["client_id"], local["client_secret"])
    assert (await client.get("/api/v1/me", headers=_bearer(token))).json()["scopes"] == [
        "cases:read", "forms:read"]

    cleared = await client.patch(url, headers=admin.headers, json={"scopes": None})
    assert cleared.status_code == 200 and cleared.json()["scopes"] is None
    token = await fetch_token(client, local["client_id"], local["client_secret"])
    assert (await client.get("/api/v1/me", headers=_bearer(token))).json()["scopes"] is None


async def test_narrowing_scopes_narrows_tokens_already_issued(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    local = await platform.client_for(province, ["tenant_admin"], by=admin)
    tenant_url = f"/api/v1/tenants/{province}"
    assert (await client.get(tenant_url, headers=local.headers)).status_code == 200
    narrowed = await client.patch(f"{_clients(province)}/{local.client_id}",
                                  headers=admin.headers, json={"scopes": ["audit:read"]})
    assert narrowed.status_code == 200, narrowed.text
    same_token = await client.get(tenant_url, headers=local.headers)
    assert same_token.status_code == 403, "the old token is narrowed on its next request"
    me = (await client.get("/api/v1/me", headers=local.headers)).json()
    assert me["scopes"] == ["audit:read"]


# --- delegation ----------------------------------------------------------------------------


async def test_a_tenant_admin_cannot_hand_out_what_it_does_not_hold(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    for fields in ({"scopes": ["platform:admin"]}, {"roles": ["platform_admin"]}):
        refused = await _create(client, admin, province, **fields)
        body = _assert_problem(refused, 403, "escalation")
        assert body["missing"] == ["platform:admin"]
    local = await _new_client(client, admin, province)
    url = f"{_clients(province)}/{local['client_id']}"
    patched = await client.patch(url, headers=admin.headers,
                                 json={"scopes": ["tenants:read", "platform:admin"]})
    _assert_problem(patched, 403, "escalation")
    assert (await client.get(url, headers=admin.headers)).json()["scopes"] is None


async def test_a_limited_manager_cannot_take_over_stronger_clients(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """A client manager holding a custom role may manage clients no stronger than itself."""
    province, admin = await platform.province_with_admin()
    await platform.role_for(province, "client_keeper", [
        "tenants:read", "clients:read", "clients:write", "forms:read", "cases:read",
        "submissions:create"], by=admin)
    manager = await platform.client_for(province, ["api_client"], by=admin)
    await platform.grant(province, await _principal_id(client, manager.token), "client_keeper",
                         by=admin)

    _assert_problem(await _create(client, manager, province, roles=["officer"]),
                    403, "escalation")
    _assert_problem(await _create(client, manager, province, scopes=["forms:write"]),
                    403, "escalation")
    weak = await _new_client(client, manager, province, scopes=["cases:read"])

    strong = f"{_clients(province)}/{admin.client_id}"
    before = (await client.get(strong, headers=admin.headers)).json()
    _assert_problem(await client.patch(strong, headers=manager.headers,
                                       json={"status": "disabled"}), 403, "escalation")
    _assert_problem(await client.post(f"{strong}/secret", headers=manager.headers,
                                      json={"overlap_seconds": 0}), 403, "escalation")
    assert (await client.get(strong, headers=admin.headers)).json() == before
    assert (await client.get(f"/api/v1/tenants/{province}",
                             headers=admin.headers)).status_code == 200

    mine = f"{_clients(province)}/{weak['client_id']}"
    assert (await client.patch(mine, headers=manager.headers,
                               json={"scopes": ["forms:read"]})).status_code == 200
    assert (await client.post(f"{mine}/secret", headers=manager.headers)).status_code == 200

    # A custom role granted to the client counts as much as a built-in one.
    await platform.role_for(province, "case_closer", ["cases:read", "cases:act"], by=admin)
    weak_token = await fetch_token(client, weak["client_id"],
                                   (await client.post(f"{mine}/secret", headers=admin.headers,
                                                      json={"overlap_seconds": 0})
                                    ).json()["client_secret"])
    await platform.grant(province, await _principal_id(client, weak_token), "case_closer",
                         by=admin)
    _assert_problem(await client.patch(mine, headers=manager.headers,
                                       json={"name": "mine now"}), 403, "escalation")


async def test_only_the_platform_raises_a_rate_limit_above_the_default(
    platform: Platform, app: Any, client: httpx.AsyncClient
) -> None:
    default = app.state.settings.client_rate_limit_per_minute
    assert default > 0
    province, admin = await platform.province_with_admin()
    refused = await _create(client, admin, province, rate_limit_per_minute=default + 1)
    assert _assert_problem(refused, 403, "escalation")["missing"] == ["platform:admin"]
    local = await _new_client(client, admin, province, rate_limit_per_minute=default)
    url = f"{_clients(province)}/{local['client_id']}"
    _assert_problem(await client.patch(url, headers=admin.headers,
                                       json={"rate_limit_per_minute": default + 1}),
                    403, "escalation")
    raised = await client.patch(url, headers=platform.admin.headers,
                                json={"rate_limit_per_minute": default * 2})
    assert raised.status_code == 200, raised.text
    assert raised.json()["rate_limit_per_minute"] == default * 2
    lowered = await client.patch(url, headers=admin.headers, json={"rate_limit_per_minute": 10})
    assert lowered.status_code == 200 and lowered.json()["rate_limit_per_minute"] == 10
    reset = await client.patch(url, headers=admin.headers, json={"rate_limit_per_minute": None})
    assert reset.status_code == 200 and reset.json()["rate_limit_per_minute"] is None


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "pointer"), [
    ({"scopes": ["no:such"]}, "/scopes/0"),
    ({"scopes": []}, "/scopes"),
    ({"scopes": "tenants:read"}, "/scopes"),
    ({"rate_limit_per_minute": 0}, "/rate_limit_per_minute"),
    ({"rate_limit_per_minute": 100_001}, "/rate_limit_per_minute"),
    ({"rate_limit_per_minute": "fast"}, "/rate_limit_per_minute"),
    ({"status": "deleted"}, "/status"),
    ({"status": None}, "/status"),
    ({"name": None}, "/name"),
    ({"name": ""}, "/name"),
    ({"name": "a\x00b"}, "/name"),
    ({"secret_hash": "x"}, "/secret_hash"),
    ({"roles": ["tenant_admin"]}, "/roles"),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else v)
async def test_bad_changes_are_422_and_change_nothing(
    platform: Platform, client: httpx.AsyncClient, body: dict[str, Any], pointer: str
) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province, scopes=["cases:read"])
    url = f"{_clients(province)}/{local['client_id']}"
    before = (await client.get(url, headers=admin.headers)).json()
    trail = await _audit(client, admin, province)

    response = await client.patch(url, headers=admin.headers, json=body)
    problem = _assert_problem(response, 422, "validation-failed")
    assert pointer in [e.get("pointer") for e in problem["errors"]], problem

    assert (await client.get(url, headers=admin.headers)).json() == before
    assert await _audit(client, admin, province) == trail


@pytest.mark.parametrize(("body", "pointer"), [
    ({"overlap_seconds": -1}, "/overlap_seconds"),
    ({"overlap_seconds": 30 * 24 * 3600 + 1}, "/overlap_seconds"),
    ({"overlap_seconds": "soon"}, "/overlap_seconds"),
    ({"overlap": 60}, "/overlap"),
    ([], ""),
], ids=lambda v: json.dumps(v) if not isinstance(v, str) else v)
async def test_bad_rotations_are_422_and_keep_the_secret(
    platform: Platform, client: httpx.AsyncClient, body: Any, pointer: str
) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province)
    url = f"{_clients(province)}/{local['client_id']}"
    before = (await client.get(url, headers=admin.headers)).json()
    response = await client.post(f"{url}/secret", headers=admin.headers, json=body)
    problem = _assert_problem(response, 422, "validation-failed")
    assert pointer in [e.get("pointer") for e in problem["errors"]], problem
    assert (await client.get(url, headers=admin.headers)).json() == before
    assert (await _token(client, local["client_id"], local["client_secret"])).status_code == 200


@pytest.mark.parametrize("client_id", [
    "not-a-client", "ntc_", "ntc_" + "a" * 61, "ntc_bad id", "ntc_bad.id", "NTC_abc",
    "ntc_%C3%A9", "ntc_abc%00",
])
async def test_a_malformed_client_id_is_422_naming_the_parameter(
    platform: Platform, client: httpx.AsyncClient, client_id: str
) -> None:
    province, admin = await platform.province_with_admin()
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x"}),
                                 ("POST", "/secret", {"overlap_seconds": 0})):
        response = await client.request(method, f"{_clients(province)}/{client_id}{suffix}",
                                        headers=admin.headers, json=body)
        problem = _assert_problem(response, 422, "validation-failed")
        assert [(e["parameter"], e["in"]) for e in problem["errors"]] == [("client_id", "path")]


async def test_an_unknown_client_is_404(platform: Platform, client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    url = f"{_clients(province)}/ntc_{uuid.uuid4().hex}"
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x"}),
                                 ("POST", "/secret", None)):
        response = await client.request(method, url + suffix, headers=admin.headers, json=body)
        _assert_problem(response, 404, "client-not-found")


@pytest.mark.parametrize(("fields", "pointer"), [
    ({"scopes": ["tenants:read", "bogus"]}, "/scopes/1"),
    ({"rate_limit_per_minute": 0}, "/rate_limit_per_minute"),
    ({"rate_limit_per_minute": -5}, "/rate_limit_per_minute"),
])
async def test_bad_limits_at_creation_create_nothing(
    platform: Platform, client: httpx.AsyncClient, fields: dict[str, Any], pointer: str
) -> None:
    province, admin = await platform.province_with_admin()
    before = (await client.get(_clients(province), headers=admin.headers)).json()
    problem = _assert_problem(await _create(client, admin, province, **fields),
                              422, "validation-failed")
    assert pointer in [e.get("pointer") for e in problem["errors"]]
    assert (await client.get(_clients(province), headers=admin.headers)).json() == before


# --- audit ---------------------------------------------------------------------------------


async def test_rotation_and_changes_are_audited_without_secrets(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province)
    url = f"{_clients(province)}/{local['client_id']}"
    changed = await client.patch(url, headers=admin.headers, json={
        "name": "Hệ thống một cửa", "scopes": ["cases:read"], "rate_limit_per_minute": 30})
    assert changed.status_code == 200, changed.text
    unchanged = await client.patch(url, headers=admin.headers, json={"name": "Hệ thống một cửa"})
    assert unchanged.status_code == 200
    rotated = await client.post(f"{url}/secret", headers=admin.headers,
                                json={"overlap_seconds": 60})
    new_secret = rotated.json()["client_secret"]

    records = [r for r in await _audit(client, admin, province)
               if r["resource_id"] == local["client_id"]]
    assert [r["action"] for r in records] == [
        "client.create", "client.update", "client.rotate_secret"], "a no-op is not recorded"
    update_record, rotation = records[1], records[2]
    assert update_record["actor"] == f"client:{admin.client_id}"
    assert update_record["before"] == {"name": local["name"], "status": "active",
                                       "scopes": None, "rate_limit_per_minute": None}
    assert update_record["after"] == {"name": "Hệ thống một cửa", "status": "active",
                                      "scopes": ["cases:read"], "rate_limit_per_minute": 30}
    assert rotation["after"]["overlap_seconds"] == 60
    assert rotation["after"]["previous_secret_expires_at"]
    trail = json.dumps(records)
    for secret in (local["client_secret"], new_secret):
        assert secret not in trail
    assert "hash" not in json.dumps([r["before"] for r in records] +
                                    [r["after"] for r in records])


# --- rate limits ---------------------------------------------------------------------------


async def test_a_client_over_its_rate_limit_gets_429(platform: Platform,
                                                     client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    local = await _new_client(client, admin, province, rate_limit_per_minute=3)
    token = await fetch_token(client, local["client_id"], local["client_secret"])
    target = f"/api/v1/tenants/{province}"
    for _ in range(3):
        ok = await client.get(target, headers=_bearer(token))
        assert ok.status_code == 200, ok.text
    limited = await client.get(target, headers=_bearer(token))
    _assert_problem(limited, 429, "rate-limited")
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 20, "a token comes back every 20 s at 3 a minute"
    assert limited.headers["x-ratelimit-limit"] == "3"
    assert limited.headers["x-ratelimit-remaining"] == "0"

    # Other clients, and the token endpoint, are not affected.
    assert (await client.get(target, headers=admin.headers)).status_code == 200
    assert (await _token(client, local["client_id"], local["client_secret"])).status_code == 200


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _principal(kind: str = "client", limit: int | None = None,
               client_id: str = "ntc_unit") -> Principal:
    grant = Grant("api_client", uuid.uuid4(), "/x/", frozenset({P.TENANTS_READ}))
    return Principal(id=uuid.uuid4(), kind=kind, name=client_id, client_id=client_id,
                     home_tenant_id=uuid.uuid4(), grants=(grant,), rate_limit_per_minute=limit)


def _refused(limiter: RateLimiter, principal: Principal) -> Problem:
    with pytest.raises(Problem) as raised:
        limiter.check(principal)
    assert raised.value.status == 429
    return raised.value


def test_bucket_refills_with_time() -> None:
    clock = _Clock()
    limiter = RateLimiter(6000, clock=clock)
    principal = _principal(limit=60)  # one a second
    for _ in range(60):
        limiter.check(principal)
    problem = _refused(limiter, principal)
    assert problem.headers["Retry-After"] == "1"
    assert problem.headers["X-RateLimit-Limit"] == "60"

    clock.now += 0.5
    _refused(limiter, principal)
    clock.now += 0.5
    limiter.check(principal)
    _refused(limiter, principal)

    clock.now += 3600  # refills to the burst size, not beyond
    for _ in range(60):
        limiter.check(principal)
    _refused(limiter, principal)


def test_retry_after_is_the_wait_for_one_token() -> None:
    clock = _Clock()
    limiter = RateLimiter(6000, clock=clock)
    principal = _principal(limit=3)
    for _ in range(3):
        limiter.check(principal)
    assert _refused(limiter, principal).headers["Retry-After"] == "20"
    clock.now += 15
    assert _refused(limiter, principal).headers["Retry-After"] == "5"
    clock.now += 5
    limiter.check(principal)


def test_default_limit_users_and_a_clock_stepping_back() -> None:
    clock = _Clock()
    limiter = RateLimiter(2, clock=clock)
    principal = _principal()
    limiter.check(principal)
    limiter.check(principal)
    _refused(limiter, principal)
    clock.now -= 600
    _refused(limiter, principal)
    clock.now += 630  # 30 s after the last real time: one token
    limiter.check(principal)

    user = _principal(kind="user", client_id="nentang-ui")
    for _ in range(10):
        limiter.check(user)
    unlimited = RateLimiter(0, clock=clock)
    for _ in range(1000):
        unlimited.check(_principal(client_id="ntc_other"))
    own = _principal(limit=1, client_id="ntc_own")
    unlimited.check(own)
    _refused(unlimited, own)
