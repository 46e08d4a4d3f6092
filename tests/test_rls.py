"""The second wall: PostgreSQL row-level security, checked as the service's own role."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.db import Base
from tests.conftest import Backend, only_postgresql
from tests.isolation_deliveries import victim_deliveries
from tests.isolation_forms import victim_forms
from tests.isolation_reports import victim_reports
from tests.isolation_sharing import (
    publish_data_service,
    replace_gateway_trust,
    replace_lookup,
)
from tests.isolation_signing import victim_signatures
from tests.isolation_workflows import delegation, victim_workflows
from tests.pki import build as build_pki
from tests.platform import Platform, sign_in

PASSWORD = "mật-khẩu-đủ-dài-1"

pytestmark = only_postgresql()


def app_role_engine(backend: Backend) -> AsyncEngine:
    """The service's role, with a pool of one so every transaction reuses one connection."""
    return create_async_engine(backend.settings.effective_database_url, pool_size=1,
                               max_overflow=0)


async def superuser_scalar(backend: Backend, sql: str, **params: object) -> object:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql), params)
    finally:
        await engine.dispose()


async def tenant_path(backend: Backend, code: str) -> str:
    path = await superuser_scalar(backend, "SELECT path FROM tenants WHERE code = :c", c=code)
    assert isinstance(path, str)
    return path


# Rows in flight that the fixture below does not make: an idempotency record (covered in
# tests/test_idempotency.py) and a federated sign-in between redirect and callback.
MAY_BE_EMPTY = frozenset({"idempotency_keys", "login_flows"})
SCOPED_TABLES = sorted(
    [*(t.name for t in Base.metadata.sorted_tables if "tenant_id" in t.c), "tenants"]
)


async def test_catalogue_every_tenant_table_forces_rls(backend: Backend) -> None:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("""
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                  AND (c.relname = 'tenants' OR EXISTS (
                      SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
            """))).all()
    finally:
        await engine.dispose()
    found = {name: (rls, force, policies) for name, rls, force, policies in rows}
    assert sorted(found) == SCOPED_TABLES
    weak = {name: flags for name, flags in found.items() if flags[:2] != (True, True)
            or flags[2] < 1}
    assert not weak, f"tables without ENABLE + FORCE row-level security and a policy: {weak}"


async def test_service_role_is_unprivileged_and_owns_nothing(backend: Backend) -> None:
    role = backend.settings.db_app_role
    flags = await superuser_scalar(
        backend, "SELECT rolsuper OR rolbypassrls OR rolcreaterole FROM pg_roles "
        "WHERE rolname = :r", r=role)
    assert flags is False
    owned = await superuser_scalar(
        backend, "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = :r", r=role)
    assert owned == 0
    owner_tables = await superuser_scalar(
        backend, "SELECT count(*) FROM pg_tables WHERE tableowner = :r AND schemaname = 'public'",
        r=backend.settings.db_owner_role)
    assert owner_tables == len(Base.metadata.tables) + 1  # + alembic_version


async def test_unscoped_select_as_service_role_returns_no_rows(
    backend: Backend, platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    user = await platform.user_for(province, ["officer"], by=admin, password=PASSWORD)
    await platform.role_for(province, "rls_role", ["cases:read"], by=admin)
    await sign_in(client, province, user["username"], PASSWORD)  # a code and a refresh token
    await client.put(f"/api/v1/tenants/{province}/identity-provider", headers=admin.headers,
                     json={"display_name": "SSO", "issuer": "https://sso.example.vn",
                           "client_id": "nentang", "client_secret": "s3cret-value",
                           "match_claim": "sub"})
    await victim_forms(client, province, admin)  # forms, versions and submissions
    await victim_reports(client, province, admin)
    await victim_workflows(client, province, admin)  # workflows, cases, their timers
    await delegation(client, admin, user["id"])
    await victim_signatures(client, province, admin, build_pki())  # set-up, signatures
    secret = await client.post(f"/api/v1/tenants/{province}/webhook-secrets",
                               headers=admin.headers)
    assert secret.status_code == 201, secret.text  # (deliveries: vw-pub's hook above)
    await victim_deliveries(platform, province, admin)  # a subscription; attempts recorded
    for attack in (publish_data_service(None, province), replace_gateway_trust(None, province),
                   replace_lookup(None, province)):
        done = await client.request(attack.method, attack.url, json=attack.json,
                                    headers=admin.headers)
        assert done.status_code < 300, done.text
    calendar = await client.put(f"/api/v1/tenants/{province}/calendar", headers=admin.headers,
                                json={"holidays": [{"date": "2026-09-02", "name": "Quốc khánh"}]})
    assert calendar.status_code == 200, calendar.text
    engine = app_role_engine(backend)
    try:
        for table in SCOPED_TABLES:
            if table in MAY_BE_EMPTY:
                continue
            total = await superuser_scalar(backend, f"SELECT count(*) FROM {table}")
            assert isinstance(total, int) and total > 0, f"{table} has no rows to hide"
            async with engine.connect() as conn:
                assert await conn.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table
    finally:
        await engine.dispose()


async def test_raw_sql_sees_only_the_scoped_subtree(backend: Backend, platform: Platform) -> None:
    """Raw SQL skips the application wall entirely; RLS alone must hold."""
    a, admin_a = await platform.province_with_admin()
    commune = await platform.tenant(a, "commune", by=admin_a)
    b, _ = await platform.province_with_admin()
    engine = app_role_engine(backend)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT set_config('nentang.scope', :s, true)"),
                               {"s": await tenant_path(backend, a)})
            codes = set((await conn.execute(text("SELECT code FROM tenants"))).scalars())
            assert codes == {a, commune}
            owners = set((await conn.execute(text(
                "SELECT t.code FROM audit_records r JOIN tenants t ON t.id = r.tenant_id"
            ))).scalars())
            assert owners <= {a, commune} and b not in owners
    finally:
        await engine.dispose()


async def test_pooled_connection_reuse_leaks_nothing(backend: Backend, platform: Platform) -> None:
    a, _ = await platform.province_with_admin()
    b, _ = await platform.province_with_admin()
    path_a, path_b = await tenant_path(backend, a), await tenant_path(backend, b)
    engine = app_role_engine(backend)
    count = text("SELECT count(*) FROM tenants")
    scope = text("SELECT set_config('nentang.scope', :s, true)")
    try:
        async with engine.begin() as conn:
            await conn.execute(scope, {"s": path_a})
            assert await conn.scalar(text("SELECT code FROM tenants")) == a
        async with engine.begin() as conn:  # same pooled connection, no scope set
            assert await conn.scalar(text("SELECT current_setting('nentang.scope', true)")) == ""
            assert await conn.scalar(count) == 0
        with pytest.raises(DBAPIError):
            async with engine.begin() as conn:  # B's transaction fails half-way
                await conn.execute(scope, {"s": path_b})
                await conn.execute(text("SELECT 1 / 0"))
        async with engine.begin() as conn:
            assert await conn.scalar(count) == 0
            await conn.execute(scope, {"s": path_a})
            assert set((await conn.execute(text("SELECT code FROM tenants"))).scalars()) == {a}
    finally:
        await engine.dispose()


async def test_service_role_cannot_rewrite_the_audit_trail(
    backend: Backend, platform: Platform
) -> None:
    engine = app_role_engine(backend)
    try:
        for statement in ("UPDATE audit_records SET actor = 'x'", "DELETE FROM audit_records"):
            with pytest.raises(ProgrammingError, match="permission denied"):
                async with engine.begin() as conn:
                    await conn.execute(text("SELECT set_config('nentang.scope', '/', true)"))
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_insert_outside_scope_is_refused_by_the_policy(
    backend: Backend, platform: Platform
) -> None:
    a, _ = await platform.province_with_admin()
    b, _ = await platform.province_with_admin()
    b_id = await superuser_scalar(backend, "SELECT id FROM tenants WHERE code = :c", c=b)
    engine = app_role_engine(backend)
    try:
        with pytest.raises(ProgrammingError, match="row-level security"):
            async with engine.begin() as conn:
                await conn.execute(text("SELECT set_config('nentang.scope', :s, true)"),
                                   {"s": await tenant_path(backend, a)})
                await conn.execute(
                    text("INSERT INTO principals (tenant_id, id, kind, status, created_at) "
                         "VALUES (:t, :i, 'client', 'active', now())"),
                    {"t": b_id, "i": uuid.uuid4()})
    finally:
        await engine.dispose()


async def test_inherited_definitions_are_readable_below_but_writable_only_in_place(
    backend: Backend, platform: Platform
) -> None:
    """A commune's scope reads its province's custom roles; it cannot change or add them."""
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    sibling, _ = await platform.province_with_admin()
    await platform.role_for(province, "inherited_role", ["cases:read"], by=admin)
    await platform.role_for(sibling, "foreign_role", ["cases:read"])
    province_id = await superuser_scalar(backend, "SELECT id FROM tenants WHERE code = :c",
                                         c=province)
    engine = app_role_engine(backend)
    scope = text("SELECT set_config('nentang.scope', :s, true)")
    try:
        async with engine.begin() as conn:
            await conn.execute(scope, {"s": await tenant_path(backend, commune)})
            keys = set((await conn.execute(text("SELECT key FROM roles"))).scalars())
            assert "inherited_role" in keys and "foreign_role" not in keys
            for statement in ("UPDATE roles SET name = 'x'", "DELETE FROM roles"):
                assert (await conn.execute(text(statement))).rowcount == 0
        with pytest.raises(ProgrammingError, match="row-level security"):
            async with engine.begin() as conn:
                await conn.execute(scope, {"s": await tenant_path(backend, commune)})
                await conn.execute(text(
                    "INSERT INTO roles (tenant_id, key, name, permissions, created_at, "
                    "updated_at) VALUES (:t, 'planted', 'x', '[]', now(), now())"),
                    {"t": province_id})
    finally:
        await engine.dispose()
    assert await superuser_scalar(
        backend, "SELECT name FROM roles WHERE key = 'inherited_role'") == "inherited_role"
