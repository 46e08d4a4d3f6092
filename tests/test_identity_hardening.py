"""Regressions from the security review of identity and access: each test names the attack
and asserts the platform refuses it."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from sqlalchemy import text

from tests.conftest import Backend
from tests.platform import (
    UI_CLIENT,
    Platform,
    authorize_params,
    bearer,
    password_sign_in,
    pkce_pair,
    sign_in,
)

PASSWORD = "mật-khẩu-đủ-dài-1"


async def _user(platform: Platform, tenant: str, roles: list[str], **fields: Any
                ) -> dict[str, Any]:
    return await platform.user_for(tenant, roles, password=PASSWORD, **fields)


async def _audit_reasons(platform: Platform, tenant: str) -> list[str]:
    items = (await platform.http.get(f"/api/v1/tenants/{tenant}/audit",
                                     headers=platform.admin.headers,
                                     params={"limit": "500"})).json()["items"]
    return [r["after"]["reason"] for r in items if r["action"] == "login.failed"]


async def test_a_locked_account_looks_like_a_wrong_password(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    real = await _user(platform, province, [])
    last: dict[str, httpx.Response] = {}
    for name in (real["username"], "khong.ton.tai"):
        for _ in range(7):
            last[name] = await password_sign_in(client, province, name, "sai-mật-khẩu-rồi")
    assert {r.status_code for r in last.values()} == {401}
    assert {'data-error="bad-credentials"' in r.text for r in last.values()} == {True}
    assert (await _audit_reasons(platform, province))[-1] == "locked", "only the audit says why"


async def test_parallel_guesses_are_all_counted(platform: Platform, client: httpx.AsyncClient,
                                                backend: Backend) -> None:
    province, _ = await platform.province_with_admin()
    real = await _user(platform, province, [])
    answers = await asyncio.gather(*(password_sign_in(client, province, real["username"],
                                                      f"sai-mật-khẩu-{i}") for i in range(12)))
    assert {a.status_code for a in answers} == {401}
    reasons = await _audit_reasons(platform, province)
    assert reasons.count("bad-password") == 5 and reasons.count("locked") == 7
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            failed = (await conn.execute(text(
                "SELECT failed_logins FROM users WHERE username = :u"),
                {"u": real["username"]})).scalar_one()
    finally:
        await engine.dispose()
    assert failed == 5


async def test_a_totp_code_signs_in_once_even_in_parallel(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    user = await _user(platform, province, ["officer"], totp_required=True)
    code = pyotp.TOTP(parse_qs(urlsplit(user["totp_uri"]).query)["secret"][0]).now()
    answers = await asyncio.gather(*(password_sign_in(client, province, user["username"],
                                                      PASSWORD, totp=code) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [303, 401, 401, 401]


async def test_revoking_checks_the_granted_role_not_a_same_named_one_below(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    await platform.role_for(province, "kiem_tra", ["tenants:read", "audit:read", "users:read"],
                            by=admin)
    victim = await _user(platform, commune, [])
    grant = await platform.grant(commune, victim["id"], "kiem_tra", by=admin)
    await platform.role_for(commune, "helper", ["tenants:read", "roles:write", "grants:write"],
                            by=admin)
    helper = await platform.client_for(commune, ["api_client"], by=admin)
    helper_id = (await client.get("/api/v1/me", headers=helper.headers)).json()["id"]
    await platform.grant(commune, helper_id, "helper", by=admin)
    shadow = await client.post(f"/api/v1/tenants/{commune}/roles", headers=helper.headers,
                               json={"key": "kiem_tra", "name": "x",
                                     "permissions": ["tenants:read"]})
    assert shadow.status_code == 201
    revoke = await client.delete(f"/api/v1/tenants/{commune}/grants/{grant['id']}",
                                 headers=helper.headers)
    assert revoke.status_code == 403 and revoke.json()["code"] == "escalation"


async def test_control_characters_never_reach_the_database(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    users_url = f"/api/v1/tenants/{province}/users"
    _, challenge = pkce_pair()
    answers = [
        await password_sign_in(client, province + "\x00", "abc", PASSWORD),
        await password_sign_in(client, province, "abc\x00", PASSWORD),
        await client.get("/oauth/federated",
                         params={**authorize_params(challenge), "tenant": "A\x00"}),
        await client.post(users_url, headers=admin.headers, json={
            "username": "nul.email", "display_name": "x", "email": "a\u0000b@c.vn"}),
        await client.post(f"/api/v1/tenants/{province}/roles", headers=admin.headers, json={
            "key": "nul_desc", "name": "x", "description": "a\u0000b",
            "permissions": ["tenants:read"]}),
    ]
    assert [a.status_code for a in answers] == [401, 401, 404, 422, 422]
    bulk = await client.post(f"{users_url}/bulk", headers=admin.headers, json={"users": [
        {"username": "ok.row.one", "display_name": "ok"},
        {"username": "bad.row.two", "display_name": "x", "email": "a\u0000b@c.vn"}]})
    assert [r["status"] for r in bulk.json()["results"]] == ["created", "invalid"]


async def test_odd_documents_are_422_not_500(platform: Platform,
                                             client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    huge = "username,display_name\n" + "a," + "x" * 140_000 + "\n"
    csv = await client.post(f"/api/v1/tenants/{province}/users/bulk",
                            headers={**admin.headers, "Content-Type": "text/csv"},
                            content=huge.encode())
    assert csv.status_code == 422 and csv.json()["code"] == "malformed-csv"
    cursor = await client.get(f"/api/v1/tenants/{province}/grants", headers=admin.headers,
                              params={"cursor": "WyJub3BlIl0"})  # ["nope"]
    assert cursor.status_code == 422 and cursor.json()["code"] == "invalid-cursor"
    long = await password_sign_in(client, province, "x.y", "p" * 20_000)
    assert long.status_code == 400  # the form is refused before any password work


async def test_a_unit_suspended_above_stops_even_users_without_grants(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    user = await _user(platform, commune, [])
    suspended = await client.patch(f"/api/v1/tenants/{province}", json={"status": "suspended"},
                                   headers={**platform.admin.headers, "If-Match": "*"})
    assert suspended.status_code == 200
    attempt = await password_sign_in(client, commune, user["username"], PASSWORD)
    assert attempt.status_code == 403 and 'data-error="unit-suspended"' in attempt.text


async def test_resetting_a_password_ends_existing_sessions(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    user = await _user(platform, province, ["officer"])
    tokens = await sign_in(client, province, user["username"], PASSWORD)
    reset = await client.post(f"/api/v1/tenants/{province}/users/{user['id']}/password",
                              headers=admin.headers, json={"password": "mật-khẩu-mới-đủ-dài"})
    assert reset.status_code == 200
    refresh = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT,
        "refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


async def test_listing_tenants_needs_tenants_read_within_the_tokens_scope(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    created = (await client.post(f"/api/v1/tenants/{province}/clients", headers=admin.headers,
                                 json={"name": "narrow", "roles": ["api_client"],
                                       "scopes": ["submissions:create"]})).json()
    token = (await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(created["client_id"], created["client_secret"]))).json()
    listed = await client.get("/api/v1/tenants", headers=bearer(token["access_token"]))
    assert listed.status_code == 200 and listed.json()["items"] == []


def test_database_errors_never_log_parameter_values(app: Any) -> None:
    """Values (password hashes, TOTP and client secrets) stay out of SQL error messages."""
    assert app.state.db.engine.sync_engine.hide_parameters is True


async def test_http_identity_providers_need_the_operators_consent(
    platform: Platform, backend: Backend
) -> None:
    """Off by default: only an installation that runs its provider on the same machine turns
    on loopback http; everyone else gets https only."""
    import httpx as httpx_

    from app.main import create_app

    province, admin = await platform.province_with_admin()
    strict = create_app(backend.settings.model_copy(update={"idp_allow_http_loopback": False}))
    try:
        async with httpx_.AsyncClient(transport=httpx_.ASGITransport(app=strict),
                                      base_url="http://nentang.test") as http:
            refused = await http.put(f"/api/v1/tenants/{province}/identity-provider",
                                     headers=admin.headers, json={
                                         "display_name": "SSO", "issuer": "http://127.0.0.1:9",
                                         "client_id": "nentang", "client_secret": "s3cret-value",
                                         "match_claim": "sub"})
    finally:
        await strict.state.db.dispose()
    assert refused.status_code == 422 and refused.json()["code"] == "issuer-not-https"


async def test_a_new_units_admin_password_is_never_cached(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    created = await client.post("/api/v1/tenants", headers=admin.headers, json={
        "code": f"X{province[1:]}", "name": "Xã", "kind": "commune", "parent": province,
        "admin": {"username": "chu.tich", "display_name": "Chủ tịch"}})
    assert created.status_code == 201 and created.json()["admin"]["initial_password"]
    assert created.headers["cache-control"] == "no-store"


async def test_someone_elses_replay_of_a_used_code_does_not_end_the_session(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    from tests.platform import UI_REDIRECT, code_from

    province, _ = await platform.province_with_admin()
    user = await _user(platform, province, ["officer"])
    verifier, _ = pkce_pair()
    code = code_from(await password_sign_in(client, province, user["username"], PASSWORD,
                                            verifier=verifier))
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": UI_REDIRECT,
                "code_verifier": verifier}
    tokens = (await client.post("/oauth/token", data={**exchange, "client_id": UI_CLIENT})).json()
    other = await client.post("/oauth/token", data={**exchange, "client_id": "nentang-cli"})
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    alive = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT,
        "refresh_token": tokens["refresh_token"]})
    assert alive.status_code == 200, "only the code's own client can end its session"


async def test_idempotency_fingerprints_hold_no_password(
    platform: Platform, client: httpx.AsyncClient, backend: Backend
) -> None:
    province, admin = await platform.province_with_admin()
    url = f"/api/v1/tenants/{province}/users"
    body = {"username": "idem.user", "display_name": "A", "password": "mật-khẩu-thứ-nhất"}
    headers = {**admin.headers, "Idempotency-Key": "user-1"}
    first = await client.post(url, headers=headers, json=body)
    assert first.status_code == 201
    # the fingerprint does not depend on the password, so nothing in it can be guessed
    again = await client.post(url, headers=headers, json={**body, "password": "khác-hẳn-rồi-nhé"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(text(
                "SELECT response FROM idempotency_keys WHERE key = 'user-1'"))).scalar_one()
    finally:
        await engine.dispose()
    assert "mật-khẩu-thứ-nhất" not in str(stored)
