from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from tests.conftest import Backend
from tests.platform import Platform, new_code


async def _count(backend: Backend, sql: str, **params: object) -> int:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            value = await conn.scalar(text(sql), params)
    finally:
        await engine.dispose()
    return int(value or 0)


async def test_same_key_same_body_replays(platform: Platform, client: httpx.AsyncClient,
                                          backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    body = {"code": new_code(), "name": "Xã A", "kind": "commune", "parent": province}
    headers = {**admin.headers, "Idempotency-Key": "create-xa-a"}
    first = await client.post("/api/v1/tenants", json=body, headers=headers)
    again = await client.post("/api/v1/tenants", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(backend, "SELECT count(*) FROM tenants WHERE code = :c",
                        c=body["code"]) == 1


async def test_same_key_different_body_is_422(platform: Platform, client: httpx.AsyncClient,
                                              backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    headers = {**admin.headers, "Idempotency-Key": "k-1"}
    body = {"code": new_code(), "name": "Xã B", "kind": "commune", "parent": province}
    assert (await client.post("/api/v1/tenants", json=body, headers=headers)).status_code == 201
    other = {**body, "code": new_code()}
    reused = await client.post("/api/v1/tenants", json=other, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency-key-reused"
    assert reused.json()["errors"][0]["parameter"] == "Idempotency-Key"
    assert await _count(backend, "SELECT count(*) FROM tenants WHERE code = :c",
                        c=other["code"]) == 0


async def test_keys_are_scoped_per_client(platform: Platform, client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    second_admin = await platform.client_for(province, ["tenant_admin"], by=admin)
    key = {"Idempotency-Key": "shared-key"}
    one = await client.post("/api/v1/tenants", headers={**admin.headers, **key}, json={
        "code": new_code(), "name": "x", "kind": "commune", "parent": province})
    two = await client.post("/api/v1/tenants", headers={**second_admin.headers, **key}, json={
        "code": new_code(), "name": "y", "kind": "commune", "parent": province})
    assert one.status_code == two.status_code == 201
    assert "idempotent-replayed" not in two.headers


async def test_failed_request_does_not_burn_the_key(platform: Platform,
                                                    client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    headers = {**admin.headers, "Idempotency-Key": "retry-me"}
    bad = {"code": new_code(), "name": "x", "kind": "province", "parent": province}
    assert (await client.post("/api/v1/tenants", json=bad, headers=headers)).status_code == 422
    good = {**bad, "kind": "commune"}
    assert (await client.post("/api/v1/tenants", json=good, headers=headers)).status_code == 201


async def test_client_secret_is_not_stored_for_replay(platform: Platform,
                                                      client: httpx.AsyncClient,
                                                      backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    headers = {**admin.headers, "Idempotency-Key": "new-client"}
    body = {"name": "Hệ thống một cửa", "roles": ["officer"]}
    first = await client.post(f"/api/v1/tenants/{province}/clients", json=body, headers=headers)
    again = await client.post(f"/api/v1/tenants/{province}/clients", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["client_secret"]
    assert again.json()["client_secret"] is None
    assert again.json()["client_id"] == first.json()["client_id"]
    secret = first.json()["client_secret"]
    assert await _count(backend, "SELECT count(*) FROM idempotency_keys WHERE "
                        "CAST(response AS TEXT) LIKE :s", s=f"%{secret}%") == 0


async def test_malformed_key_is_rejected(platform: Platform, client: httpx.AsyncClient) -> None:
    province, admin = await platform.province_with_admin()
    response = await client.post("/api/v1/tenants", headers={
        **admin.headers, "Idempotency-Key": "x" * 300}, json={
        "code": new_code(), "name": "x", "kind": "commune", "parent": province})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-idempotency-key"


async def test_concurrent_duplicates_create_once(platform: Platform, client: httpx.AsyncClient,
                                                 backend: Backend) -> None:
    """Eight copies of one request at once: one creates, the others replay it or get 409."""
    import asyncio

    province, admin = await platform.province_with_admin()
    body = {"code": new_code(), "name": "Xã đồng thời", "kind": "commune", "parent": province}
    headers = {**admin.headers, "Idempotency-Key": "burst"}
    responses = await asyncio.gather(*(
        client.post("/api/v1/tenants", json=body, headers=headers) for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    fresh = [r for r in responses if r.status_code == 201
             and "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1
    assert all(r.json()["code"] == "idempotency-key-in-flight" for r in responses
               if r.status_code == 409)
    assert await _count(backend, "SELECT count(*) FROM tenants WHERE code = :c",
                        c=body["code"]) == 1


async def test_expired_keys_are_forgotten(platform: Platform, client: httpx.AsyncClient,
                                          backend: Backend) -> None:
    """After the TTL a key is free again, and the client's stale keys are cleared."""
    province, admin = await platform.province_with_admin()
    for key in ("old-1", "old-2"):
        created = await client.post("/api/v1/tenants", headers={
            **admin.headers, "Idempotency-Key": key}, json={
            "code": new_code(), "name": "x", "kind": "commune", "parent": province})
        assert created.status_code == 201
    me = (await client.get("/api/v1/me", headers=admin.headers)).json()["id"]
    engine = backend.superuser_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "UPDATE idempotency_keys SET created_at = :t WHERE principal_id = :p"),
                {"t": datetime(2000, 1, 1, tzinfo=UTC) if backend.is_postgresql
                 else "2000-01-01 00:00:00.000000", "p": me})
    finally:
        await engine.dispose()
    reused = await client.post("/api/v1/tenants", headers={
        **admin.headers, "Idempotency-Key": "old-1"}, json={
        "code": new_code(), "name": "y", "kind": "commune", "parent": province})
    assert reused.status_code == 201 and "idempotent-replayed" not in reused.headers
    assert await _count(backend, "SELECT count(*) FROM idempotency_keys WHERE principal_id = :p",
                        p=me) == 1
