from __future__ import annotations

import itertools

import httpx
from sqlalchemy import text

from tests.conftest import Backend
from tests.platform import Platform


async def _tamper(backend: Backend, sql: str, **params: object) -> None:
    """Change the database behind the service's back, as a rogue administrator could."""
    engine = backend.superuser_engine()
    try:
        async with engine.begin() as conn:
            if backend.is_postgresql:
                await conn.execute(text("SET LOCAL row_security = off"))
            await conn.execute(text(sql), params)
    finally:
        await engine.dispose()


async def _tenant_id(backend: Backend, code: str) -> object:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text("SELECT id FROM tenants WHERE code = :c"), {"c": code})
    finally:
        await engine.dispose()


async def _busy_commune(platform: Platform) -> tuple[str, str, dict[str, str]]:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    for version, name in enumerate(["Xã Một", "Xã Hai", "Xã Ba"], start=1):
        response = await platform.http.patch(
            f"/api/v1/tenants/{commune}", json={"name": name},
            headers={**admin.headers, "If-Match": f'"{version}"'})
        assert response.status_code == 200, response.text
    return province, commune, admin.headers


async def test_every_change_is_recorded_with_who_what_and_before_after(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, commune, headers = await _busy_commune(platform)
    page = await client.get(f"/api/v1/tenants/{commune}/audit", headers=headers)
    assert page.status_code == 200
    records = page.json()["items"]
    assert [r["action"] for r in records] == ["tenant.create"] + ["tenant.update"] * 3
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(records))
    assert records[1]["before"]["name"] != records[1]["after"]["name"]
    assert records[3]["after"]["name"] == "Xã Ba"
    assert all(r["actor"].startswith("client:ntc_") and r["request_id"] for r in records)

    created_client = await client.post(f"/api/v1/tenants/{province}/clients", headers=headers,
                                       json={"name": "Một cửa", "roles": ["officer"]})
    request_id = created_client.headers["x-request-id"]
    trail = (await client.get(f"/api/v1/tenants/{province}/audit", headers=headers)).json()
    last = trail["items"][-1]
    assert last["action"] == "client.create" and last["request_id"] == request_id
    assert "client_secret" not in str(last)


async def test_audit_pages_with_a_cursor(platform: Platform, client: httpx.AsyncClient) -> None:
    _, commune, headers = await _busy_commune(platform)
    first = await client.get(f"/api/v1/tenants/{commune}/audit", params={"limit": 3},
                             headers=headers)
    rest = await client.get(f"/api/v1/tenants/{commune}/audit",
                            params={"limit": 3, "cursor": first.json()["next_cursor"]},
                            headers=headers)
    assert [r["seq"] for r in first.json()["items"]] == [1, 2, 3]
    assert [r["seq"] for r in rest.json()["items"]] == [4]
    assert rest.json()["next_cursor"] is None
    bad = await client.get(f"/api/v1/tenants/{commune}/audit", params={"cursor": "!!"},
                           headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["parameter"] == "cursor"


async def test_verify_reports_intact_chain(platform: Platform, client: httpx.AsyncClient) -> None:
    _, commune, headers = await _busy_commune(platform)
    report = (await client.get(f"/api/v1/tenants/{commune}/audit/verify", headers=headers)).json()
    assert report == {**report, "ok": True, "checked": 4, "head_seq": 4, "broken_seq": None}


async def test_edit_in_the_database_is_detected(platform: Platform, client: httpx.AsyncClient,
                                                backend: Backend) -> None:
    _, commune, headers = await _busy_commune(platform)
    await _tamper(backend, "UPDATE audit_records SET actor = 'someone else' "
                  "WHERE tenant_id = :t AND seq = 3", t=await _tenant_id(backend, commune))
    report = (await client.get(f"/api/v1/tenants/{commune}/audit/verify", headers=headers)).json()
    assert report["ok"] is False and report["broken_seq"] == 3
    assert "hash" in report["reason"]


async def test_deletion_in_the_database_is_detected(platform: Platform,
                                                    client: httpx.AsyncClient,
                                                    backend: Backend) -> None:
    _, commune, headers = await _busy_commune(platform)
    await _tamper(backend, "DELETE FROM audit_records WHERE tenant_id = :t AND seq = 2",
                  t=await _tenant_id(backend, commune))
    report = (await client.get(f"/api/v1/tenants/{commune}/audit/verify", headers=headers)).json()
    assert report["ok"] is False and report["broken_seq"] == 2
    assert "missing" in report["reason"]


async def test_relinked_forgery_is_still_detected(platform: Platform, client: httpx.AsyncClient,
                                                  backend: Backend) -> None:
    """Deleting a record and fixing the next one's prev_hash still breaks that record's hash."""
    _, commune, headers = await _busy_commune(platform)
    tenant_id = await _tenant_id(backend, commune)
    await _tamper(backend, "DELETE FROM audit_records WHERE tenant_id = :t AND seq = 2",
                  t=tenant_id)
    await _tamper(backend, "UPDATE audit_records SET seq = 2, prev_hash = "
                  "(SELECT hash FROM audit_records WHERE tenant_id = :t AND seq = 1) "
                  "WHERE tenant_id = :t AND seq = 3", t=tenant_id)
    await _tamper(backend, "UPDATE audit_records SET seq = 3 WHERE tenant_id = :t AND seq = 4",
                  t=tenant_id)
    report = (await client.get(f"/api/v1/tenants/{commune}/audit/verify", headers=headers)).json()
    assert report["ok"] is False and report["broken_seq"] == 2
    assert "content" in report["reason"]


async def test_auditor_reads_but_officer_does_not(platform: Platform,
                                                  client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    auditor = await platform.client_for(province, ["auditor"], by=admin)
    officer = await platform.client_for(province, ["officer"], by=admin)
    assert (await client.get(f"/api/v1/tenants/{province}/audit", headers=auditor.headers)
            ).status_code == 200
    denied = await client.get(f"/api/v1/tenants/{province}/audit", headers=officer.headers)
    assert denied.status_code == 403
