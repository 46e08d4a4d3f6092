"""Users, custom roles, grants and delegated administration down the tenant tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Backend
from tests.isolation import snapshot
from tests.platform import ROOT_CODE, Credentials, Platform, bearer, new_code, sign_in

PASSWORD = "mật-khẩu-đủ-dài-1"

# ---- the delegation matrix ---------------------------------------------------------------


@dataclass
class Tree:
    """ministry (root) > province > commune, sibling commune; an admin client at each."""

    codes: dict[str, str]
    admins: dict[str, Credentials]
    members: dict[str, str]  # a plain user in each unit, to grant roles to


@pytest.fixture(scope="session")
async def tree(platform: Platform) -> Tree:
    province, province_admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=province_admin)
    sibling = await platform.tenant(province, "commune", by=province_admin)
    codes = {"ministry": ROOT_CODE, "province": province, "commune": commune,
             "sibling": sibling}
    admins = {name: await platform.client_for(code, ["tenant_admin"])
              for name, code in codes.items()}
    members = {name: (await platform.user_for(code, []))["id"] for name, code in codes.items()}
    return Tree(codes, admins, members)


UNITS = ["ministry", "province", "commune", "sibling"]
# Which units each actor's subtree covers.
COVERS = {
    "ministry": set(UNITS),
    "province": {"province", "commune", "sibling"},
    "commune": {"commune"},
    "sibling": {"sibling"},
}


def expected(action: str, actor: str, target: str) -> int:
    if target not in COVERS[actor]:
        return 404  # cannot even see it
    return {"read": 200, "create": 201, "grant": 201, "escalate": 403}[action]


async def attempt(http: httpx.AsyncClient, tree: Tree, action: str, actor: str,
                  target: str) -> httpx.Response:
    code, headers = tree.codes[target], tree.admins[actor].headers
    if action == "read":
        return await http.get(f"/api/v1/tenants/{code}/users", headers=headers)
    if action == "create":
        return await http.post(f"/api/v1/tenants/{code}/users", headers=headers, json={
            "username": f"u.{new_code().lower()}", "display_name": "Cán bộ mới"})
    role = "officer" if action == "grant" else "platform_admin"
    return await http.post(f"/api/v1/tenants/{code}/grants", headers=headers, json={
        "principal_id": tree.members[target], "role": role})


@pytest.mark.parametrize("action", ["read", "create", "grant", "escalate"])
@pytest.mark.parametrize("actor", UNITS)
async def test_delegation_matrix(action: str, actor: str, tree: Tree, client: httpx.AsyncClient,
                                 backend: Backend) -> None:
    for target in UNITS:
        want = expected(action, actor, target)
        before = await snapshot(backend) if want >= 400 else None
        response = await attempt(client, tree, action, actor, target)
        assert response.status_code == want, (
            f"{actor} {action} {target}: {response.status_code} {response.text}")
        if before is not None:
            assert response.headers["content-type"] == "application/problem+json"
            assert await snapshot(backend) == before, f"{actor} {action} {target} changed data"
        if action == "grant" and want == 201:
            revoked = await client.delete(
                f"/api/v1/tenants/{tree.codes[target]}/grants/{response.json()['id']}",
                headers=tree.admins[actor].headers)
            assert revoked.status_code == 204


async def test_escalation_through_a_custom_role_is_refused(
    platform: Platform, client: httpx.AsyncClient, backend: Backend
) -> None:
    province, admin = await platform.province_with_admin()
    # a form designer who may also manage roles and grants still cannot mint audit:read
    role = await platform.role_for(province, "role_keeper",
                                   ["roles:write", "grants:write", "forms:write"], by=admin)
    assert role["permissions"] == ["forms:write", "grants:write", "roles:write"]
    keeper = await platform.client_for(province, ["form_designer"], by=admin)
    keeper_id = (await client.get("/api/v1/me", headers=keeper.headers)).json()["id"]
    await platform.grant(province, keeper_id, "role_keeper", by=admin)
    before = await snapshot(backend)
    sneaky = await client.post(f"/api/v1/tenants/{province}/roles", headers=keeper.headers,
                               json={"key": "sneaky", "name": "x",
                                     "permissions": ["forms:write", "audit:read"]})
    assert sneaky.status_code == 403 and sneaky.json()["code"] == "escalation"
    assert sneaky.json()["missing"] == ["audit:read"]
    self_grant = await client.post(f"/api/v1/tenants/{province}/grants", headers=keeper.headers,
                                   json={"principal_id": keeper_id, "role": "tenant_admin"})
    assert self_grant.status_code == 403 and self_grant.json()["code"] == "escalation"
    assert await snapshot(backend) == before
    # within what it holds, it may define and grant
    fine = await client.post(f"/api/v1/tenants/{province}/roles", headers=keeper.headers,
                             json={"key": "bieu_mau", "name": "Biểu mẫu",
                                   "permissions": ["forms:write"]})
    assert fine.status_code == 201, fine.text


async def test_custom_role_is_inherited_and_read_only_below(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    commune_admin = await platform.client_for(commune, ["tenant_admin"], by=admin)
    await platform.role_for(province, "ho_tich", ["cases:read", "cases:act"], by=admin)
    listed = (await client.get(f"/api/v1/tenants/{commune}/roles",
                               headers=commune_admin.headers)).json()
    ho_tich = next(r for r in listed if r["key"] == "ho_tich")
    assert ho_tich["inherited"] and not ho_tich["builtin"]
    assert ho_tich["tenant"] is None, "the commune admin does not learn the province's code"
    assert {r["key"] for r in listed if r["builtin"]} >= {"tenant_admin", "officer", "auditor"}
    # usable below: the commune grants it to its own official
    official = await platform.user_for(commune, [], by=commune_admin, password=PASSWORD)
    await platform.grant(commune, official["id"], "ho_tich", by=commune_admin)
    tokens = await sign_in(client, commune, official["username"], PASSWORD)
    me = (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["grants"] == [{"role": "ho_tich", "tenant": commune,
                             "permissions": ["cases:act", "cases:read"]}]
    # but not editable there
    changed = await client.put(f"/api/v1/tenants/{commune}/roles/ho_tich",
                               headers=commune_admin.headers,
                               json={"name": "x", "permissions": ["cases:read"]})
    assert changed.status_code == 403 and changed.json()["code"] == "inherited-read-only"
    # the province's change reaches the holder on its next request, with the same token
    await client.put(f"/api/v1/tenants/{province}/roles/ho_tich", headers=admin.headers,
                     json={"name": "Hộ tịch", "permissions": ["cases:read"]})
    me = (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["grants"][0]["permissions"] == ["cases:read"]
    # a granted role cannot be deleted
    in_use = await client.delete(f"/api/v1/tenants/{province}/roles/ho_tich",
                                 headers=admin.headers)
    assert in_use.status_code == 409


async def test_builtin_role_keys_are_reserved(platform: Platform,
                                              client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    clash = await client.post(f"/api/v1/tenants/{province}/roles", headers=admin.headers,
                              json={"key": "officer", "name": "x", "permissions": ["cases:read"]})
    assert clash.status_code == 422 and clash.json()["errors"][0]["pointer"] == "/key"
    unknown = await client.post(f"/api/v1/tenants/{province}/roles", headers=admin.headers,
                                json={"key": "odd", "name": "x", "permissions": ["cases:fly"]})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["pointer"] == "/permissions/0"


async def test_revoking_a_grant_takes_effect_on_the_next_request(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    official = await platform.user_for(province, [], password=PASSWORD)
    grant = await platform.grant(province, official["id"], "auditor", by=admin)
    headers = bearer((await sign_in(client, province, official["username"], PASSWORD)
                      )["access_token"])
    audit_url = f"/api/v1/tenants/{province}/audit"
    assert (await client.get(audit_url, headers=headers)).status_code == 200
    revoked = await client.delete(f"/api/v1/tenants/{province}/grants/{grant['id']}",
                                  headers=admin.headers)
    assert revoked.status_code == 204
    assert (await client.get(audit_url, headers=headers)).status_code == 404
    actions = [r["action"] for r in (await client.get(
        audit_url, headers=admin.headers, params={"limit": "500"})).json()["items"]]
    assert actions.count("grant.create") == 1 and actions.count("grant.revoke") == 1


async def test_grant_cannot_reach_above_the_principals_unit(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    villager = await platform.user_for(commune, [], by=admin)
    up = await client.post(f"/api/v1/tenants/{province}/grants", headers=admin.headers,
                           json={"principal_id": villager["id"], "role": "officer"})
    assert up.status_code == 422 and up.json()["code"] == "grant-outside-home"


# ---- users -------------------------------------------------------------------------------


async def test_user_lifecycle_and_validation(platform: Platform,
                                             client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    created = await platform.user_for(province, ["officer"], by=admin,
                                      email="a@example.vn", external_id="001099000123")
    assert created["initial_password"] and len(created["initial_password"]) >= 16
    url = f"/api/v1/tenants/{province}/users/{created['id']}"
    shown = (await client.get(url, headers=admin.headers)).json()
    assert "initial_password" not in shown and shown["external_id"] == "001099000123"
    dup = await client.post(f"/api/v1/tenants/{province}/users", headers=admin.headers,
                            json={"username": created["username"], "display_name": "x"})
    assert dup.status_code == 409 and dup.json()["code"] == "username-taken"
    same_id = await client.post(f"/api/v1/tenants/{province}/users", headers=admin.headers,
                                json={"username": "other.one", "display_name": "x",
                                      "external_id": "001099000123"})
    assert same_id.status_code == 409 and same_id.json()["code"] == "external-id-taken"
    for body, pointer in (
        ({"username": "Có Dấu", "display_name": "x"}, "/username"),
        ({"username": "ok.name", "display_name": "x", "email": "not-an-email"}, "/email"),
        ({"username": "ok.name", "display_name": "x", "password": "ngắn"}, "/password"),
        ({"username": "ok.name", "display_name": "x", "roles": ["khong_co"]}, "/roles/0"),
    ):
        bad = await client.post(f"/api/v1/tenants/{province}/users", headers=admin.headers,
                                json=body)
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["pointer"] == pointer
    await platform.user_for(province, [], by=admin)
    listing = (await client.get(f"/api/v1/tenants/{province}/users", headers=admin.headers,
                                params={"limit": "1"})).json()
    assert len(listing["items"]) == 1 and listing["next_cursor"]
    renamed = await client.patch(url, headers=admin.headers, json={"display_name": "Trần Thị B"})
    assert renamed.json()["display_name"] == "Trần Thị B"
    missing = await client.get(f"/api/v1/tenants/{province}/users/not-a-uuid",
                               headers=admin.headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["parameter"] == "user_id"


async def test_managing_a_stronger_user_is_refused(platform: Platform,
                                                   client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    boss = await platform.user_for(province, ["tenant_admin"], by=admin)
    await platform.role_for(province, "nhan_su", ["users:write", "users:read"], by=admin)
    hr_client = await platform.client_for(province, ["officer"], by=admin)
    hr_id = (await client.get("/api/v1/me", headers=hr_client.headers)).json()["id"]
    await platform.grant(province, hr_id, "nhan_su", by=admin)
    takeover = await client.post(f"/api/v1/tenants/{province}/users/{boss['id']}/password",
                                 headers=hr_client.headers, json={"password": PASSWORD})
    assert takeover.status_code == 403 and takeover.json()["code"] == "escalation"


# ---- bulk --------------------------------------------------------------------------------


async def test_bulk_csv_creates_valid_rows_and_explains_the_rest(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    existing = await platform.user_for(province, [], by=admin)
    csv_body = (
        "username,display_name,email,roles,external_id\n"
        "can.bo.1,Cán bộ Một,a1@example.vn,officer,\n"
        f"{existing['username']},Trùng tên,,,\n"
        "Sai Ten,Tên sai,,,\n"
        "can.bo.2,Cán bộ Hai,,officer;reviewer,079200000001\n"
        "can.bo.3,Muốn làm vua,,platform_admin,\n"
        "can.bo.4,Vai trò lạ,,khong_co,\n"
    )
    response = await client.post(f"/api/v1/tenants/{province}/users/bulk",
                                  headers={**admin.headers, "Content-Type": "text/csv"},
                                  content=csv_body.encode())
    assert response.status_code == 200, response.text
    result = response.json()
    statuses = [(r["row"], r["status"]) for r in result["results"]]
    assert statuses == [(1, "created"), (2, "conflict"), (3, "invalid"), (4, "created"),
                        (5, "forbidden"), (6, "invalid")]
    assert (result["created"], result["failed"]) == (2, 4)
    assert result["results"][2]["errors"][0]["pointer"] == "/users/2/username"
    assert result["results"][5]["errors"][0]["pointer"] == "/users/5/roles/0"
    assert result["results"][3]["user"]["initial_password"]
    users = (await client.get(f"/api/v1/tenants/{province}/users", headers=admin.headers,
                              params={"limit": "50"})).json()["items"]
    names = {u["username"] for u in users}
    assert {"can.bo.1", "can.bo.2"} <= names
    assert not names & {"can.bo.3", "can.bo.4", "sai ten"}, "no failed row left a user behind"
    grants = (await client.get(f"/api/v1/tenants/{province}/grants", headers=admin.headers,
                               params={"limit": "100"})).json()["items"]
    assert sorted(g["role"] for g in grants if g["principal_name"] == "can.bo.2") == [
        "officer", "reviewer"]
    assert not [g for g in grants if g["principal_name"] in ("can.bo.3", "can.bo.4")]
    verify = (await client.get(f"/api/v1/tenants/{province}/audit/verify",
                               headers=admin.headers)).json()
    assert verify["ok"], "rolled-back rows left the audit chain intact"


async def test_bulk_json_and_document_errors(platform: Platform,
                                             client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    url = f"/api/v1/tenants/{province}/users/bulk"
    ok = await client.post(url, headers=admin.headers, json={"users": [
        {"username": "json.1", "display_name": "A"},
        {"username": "json.2", "display_name": "B", "unexpected": 1}]})
    assert [r["status"] for r in ok.json()["results"]] == ["created", "invalid"]
    assert ok.json()["results"][1]["errors"][0]["pointer"] == "/users/1/unexpected"
    cases: list[tuple[dict[str, str], bytes, int]] = [
        ({"Content-Type": "text/csv"}, b"name\nx\n", 422),
        ({"Content-Type": "text/csv"}, b"username,display_name\n", 422),
        ({"Content-Type": "application/json"}, b"{not json", 422),
        ({"Content-Type": "application/json"}, b'{"users": "x"}', 422),
        ({"Content-Type": "application/xml"}, b"<users/>", 415),
        ({"Content-Type": "text/csv"}, b"\xff\xfe", 422),
    ]
    for headers, body, status in cases:
        bad = await client.post(url, headers={**admin.headers, **headers}, content=body)
        assert bad.status_code == status, (body, bad.text)
        assert bad.headers["content-type"] == "application/problem+json"


def test_every_tenant_route_declares_its_permission(app: Any) -> None:
    """Routes under /api/v1/tenants/{tenant} authorise through one dependency, so the
    permission each needs is declared where the route is, and decided in one place."""
    from fastapi.routing import APIRoute

    from app.identity.dependencies import Requires

    def declared(dependant: Any) -> bool:
        return any(isinstance(d.call, Requires) or declared(d) for d in dependant.dependencies)

    undeclared = sorted(
        f"{sorted(r.methods)[0]} {r.path}" for r in app.routes
        if isinstance(r, APIRoute) and r.path.startswith("/api/v1/tenants/{tenant}")
        and not declared(r.dependant))
    assert not undeclared, f"routes without Requires(...): {undeclared}"


async def test_a_local_system_can_hold_a_custom_role(platform: Platform,
                                                     client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    await platform.role_for(province, "tra_cuu", ["tenants:read", "cases:read"], by=admin)
    system = await platform.client_for(province, ["tra_cuu"], by=admin)
    me = (await client.get("/api/v1/me", headers=system.headers)).json()
    assert me["grants"] == [{"role": "tra_cuu", "tenant": province,
                             "permissions": ["cases:read", "tenants:read"]}]
    unknown = await client.post(f"/api/v1/tenants/{province}/clients", headers=admin.headers,
                                json={"name": "x", "roles": ["officer", "khong_co"]})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["pointer"] == "/roles/1"
