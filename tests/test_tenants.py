from __future__ import annotations

import httpx

from tests.platform import ROOT_CODE, Platform, new_code


async def test_create_read_and_list_children(platform: Platform, client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    communes = sorted([await platform.tenant(province, "commune", by=admin) for _ in range(5)])

    got = await client.get(f"/api/v1/tenants/{province}", headers=admin.headers)
    assert got.status_code == 200
    body = got.json()
    assert body["code"] == province and body["kind"] == "province" and body["status"] == "active"
    assert body["parent"] is None, "the ministry lies outside a province admin's tree"
    assert got.headers["etag"] == f'"{body["version"]}"'

    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(f"/api/v1/tenants/{province}/children", params=params,
                                headers=admin.headers)
        assert page.status_code == 200, page.text
        seen += [t["code"] for t in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == communes
    assert all(len(seen[i:i + 2]) <= 2 for i in range(0, 5, 2))


async def test_recursive_subtree_and_root_listing(platform: Platform,
                                                  client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    agency = await platform.tenant(commune, "agency", by=admin)
    page = await client.get(f"/api/v1/tenants/{province}/children",
                            params={"recursive": "true"}, headers=admin.headers)
    codes = [t["code"] for t in page.json()["items"]]
    assert codes == [commune, agency]
    assert page.json()["items"][1]["parent"] == commune

    visible = await client.get("/api/v1/tenants", headers=admin.headers, params={"limit": 500})
    assert [t["code"] for t in visible.json()["items"]] == [province, commune, agency]


async def test_kind_rules_and_code_rules(platform: Platform, client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    bad_kind = await client.post("/api/v1/tenants", headers=admin.headers, json={
        "code": new_code(), "name": "x", "kind": "province", "parent": province})
    assert bad_kind.status_code == 422
    assert bad_kind.headers["content-type"] == "application/problem+json"
    assert bad_kind.json()["errors"][0]["pointer"] == "/kind"

    bad_code = await client.post("/api/v1/tenants", headers=admin.headers, json={
        "code": "lower case", "name": "x", "kind": "commune", "parent": province})
    assert bad_code.status_code == 422
    assert [e["pointer"] for e in bad_code.json()["errors"]] == ["/code"]

    duplicate = await client.post("/api/v1/tenants", headers=admin.headers, json={
        "code": province, "name": "x", "kind": "commune", "parent": province})
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "tenant-code-taken"


async def test_patch_requires_if_match_and_detects_stale(platform: Platform,
                                                         client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    url = f"/api/v1/tenants/{commune}"
    missing = await client.patch(url, headers=admin.headers, json={"name": "Phường Mới"})
    assert missing.status_code == 428
    ok = await client.patch(url, headers={**admin.headers, "If-Match": '"1"'},
                            json={"name": "Phường Mới"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "Phường Mới" and ok.headers["etag"] == '"2"'
    stale = await client.patch(url, headers={**admin.headers, "If-Match": '"1"'},
                               json={"name": "Again"})
    assert stale.status_code == 412
    assert (await client.get(url, headers=admin.headers)).json()["name"] == "Phường Mới"


async def test_suspension_needs_an_ancestor_and_blocks_writes(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    own = await client.patch(f"/api/v1/tenants/{province}",
                             headers={**admin.headers, "If-Match": '"1"'},
                             json={"status": "suspended"})
    assert own.status_code == 403, "nobody suspends the node their authority comes from"

    commune = await platform.tenant(province, "commune", by=admin)
    commune_admin = await platform.client_for(commune, ["tenant_admin"], by=admin)
    suspend = await client.patch(f"/api/v1/tenants/{commune}",
                                 headers={**admin.headers, "If-Match": '"1"'},
                                 json={"status": "suspended"})
    assert suspend.status_code == 200 and suspend.json()["status"] == "suspended"

    blocked = await client.post("/api/v1/tenants", headers=admin.headers, json={
        "code": new_code(), "name": "x", "kind": "agency", "parent": commune})
    assert blocked.status_code == 409 and blocked.json()["code"] == "tenant-suspended"
    refused = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                auth=(commune_admin.client_id, commune_admin.client_secret))
    assert refused.status_code == 400
    assert refused.json()["error"] == "unauthorized_client"

    resume = await client.patch(f"/api/v1/tenants/{commune}",
                                headers={**admin.headers, "If-Match": '"2"'},
                                json={"status": "active"})
    assert resume.status_code == 200 and resume.json()["status"] == "active"


async def test_grant_covers_subtree_not_siblings_or_parent(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    a, admin_a = await platform.province_with_admin()
    b, _ = await platform.province_with_admin()
    commune_of_a = await platform.tenant(a, "commune", by=admin_a)
    assert (await client.get(f"/api/v1/tenants/{commune_of_a}", headers=admin_a.headers)
            ).status_code == 200
    for code in (b, ROOT_CODE):
        assert (await client.get(f"/api/v1/tenants/{code}", headers=admin_a.headers)
                ).status_code == 404


async def test_read_only_role_cannot_write(platform: Platform, client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    auditor = await platform.client_for(province, ["auditor"], by=admin)
    assert (await client.get(f"/api/v1/tenants/{province}", headers=auditor.headers)
            ).status_code == 200
    denied = await client.post("/api/v1/tenants", headers=auditor.headers, json={
        "code": new_code(), "name": "x", "kind": "commune", "parent": province})
    assert denied.status_code == 403
    assert denied.json()["code"] == "forbidden"


async def test_suspension_freezes_the_whole_subtree(platform: Platform,
                                                    client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    suspend = await client.patch(f"/api/v1/tenants/{province}",
                                 headers={**platform.admin.headers, "If-Match": '"1"'},
                                 json={"status": "suspended"})
    assert suspend.status_code == 200
    # the province admin's token predates the suspension and is still unexpired: it stops
    # working on the next request, for reads and writes alike
    blocked = [
        await client.get(f"/api/v1/tenants/{commune}", headers=admin.headers),
        await client.patch(f"/api/v1/tenants/{commune}", json={"name": "x"},
                           headers={**admin.headers, "If-Match": '"1"'}),
        await client.post(f"/api/v1/tenants/{commune}/clients", headers=admin.headers,
                          json={"name": "x", "roles": ["officer"]}),
    ]
    assert [a.status_code for a in blocked] == [403] * 3, [a.text for a in blocked]
    assert {a.json()["code"] for a in blocked} == {"unit-suspended"}
    # the platform admin above it still reads, but nothing in the subtree can change
    attempts = [
        await client.patch(f"/api/v1/tenants/{commune}", json={"name": "x"},
                           headers={**platform.admin.headers, "If-Match": '"1"'}),
        await client.post("/api/v1/tenants", headers=platform.admin.headers, json={
            "code": new_code(), "name": "x", "kind": "agency", "parent": commune}),
        await client.post(f"/api/v1/tenants/{commune}/clients", headers=platform.admin.headers,
                          json={"name": "x", "roles": ["officer"]}),
    ]
    assert [a.status_code for a in attempts] == [409] * 3, [a.text for a in attempts]
    assert {a.json()["code"] for a in attempts} == {"tenant-suspended"}
    children = await client.get(f"/api/v1/tenants/{commune}/children",
                                headers=platform.admin.headers)
    assert children.status_code == 200, "reading stays possible from above"


async def test_concurrent_changes_queue_and_the_losers_get_412(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    import asyncio

    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    responses = await asyncio.gather(*(
        client.patch(f"/api/v1/tenants/{commune}", json={"name": f"Tên {i}"},
                     headers={**admin.headers, "If-Match": '"1"'}) for i in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]
    verify = await client.get(f"/api/v1/tenants/{commune}/audit/verify", headers=admin.headers)
    assert verify.json()["ok"] and verify.json()["checked"] == 2


async def test_if_match_must_be_a_strong_etag(platform: Platform,
                                              client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    url = f"/api/v1/tenants/{commune}"
    for value in ('W/"1"', '"1_0"', "1", '"+1"'):
        response = await client.patch(url, json={"name": "x"},
                                      headers={**admin.headers, "If-Match": value})
        assert response.status_code == 412, value
    star = await client.patch(url, json={"name": "y"}, headers={**admin.headers, "If-Match": "*"})
    assert star.status_code == 200
