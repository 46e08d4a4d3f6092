"""The first wall: application-side scoping, on both backends."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audit.models import AuditRecord
from app.identity.models import Principal, RoleGrant
from app.tenancy.models import Tenant
from app.tenancy.scope import ScopeNotSet, ScopeViolation, TenantScope, apply_scope
from tests.platform import Platform


async def _tenant(app: Any, code: str) -> Tenant:
    async with app.state.db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("tests"))
        tenant: Tenant = (await session.execute(select(Tenant).where(Tenant.code == code))
                          ).scalar_one()
        return tenant


async def test_unscoped_session_fails_closed(app: Any, platform: Platform) -> None:
    async with app.state.db.sessionmaker() as session:
        with pytest.raises(ScopeNotSet):
            await session.execute(select(Tenant))
        with pytest.raises(ScopeNotSet):
            await session.execute(select(AuditRecord.seq))


async def test_scoped_session_sees_only_its_subtree(app: Any, platform: Platform) -> None:
    a, admin_a = await platform.province_with_admin()
    commune = await platform.tenant(a, "commune", by=admin_a)
    b, _ = await platform.province_with_admin()
    tenant_a, tenant_b = await _tenant(app, a), await _tenant(app, b)
    async with app.state.db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.of_paths([tenant_a.path]))
        codes = set((await session.execute(select(Tenant.code))).scalars())
        assert codes == {a, commune}
        owners = set((await session.execute(select(AuditRecord.tenant_id))).scalars())
        assert owners and tenant_b.id not in owners


async def test_insert_for_a_tenant_outside_the_scope_is_refused(
    app: Any, platform: Platform
) -> None:
    a, _ = await platform.province_with_admin()
    b, _ = await platform.province_with_admin()
    tenant_a, tenant_b = await _tenant(app, a), await _tenant(app, b)
    async with app.state.db.sessionmaker() as session:
        with pytest.raises(ScopeViolation):
            async with session.begin():
                await apply_scope(session, TenantScope.of_paths([tenant_a.path]))
                session.add(Principal(tenant_id=tenant_b.id, kind="client", status="active"))
                await session.flush()


async def test_foreign_key_into_another_tenant_is_rejected(app: Any, platform: Platform) -> None:
    """Composite keys: a grant row in tenant A cannot point at a principal of tenant B, even
    when both walls are open (platform scope)."""
    a, _ = await platform.province_with_admin()
    b, _ = await platform.province_with_admin()
    tenant_a, tenant_b = await _tenant(app, a), await _tenant(app, b)
    async with app.state.db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("tests"))
        principal_b = (await session.execute(
            select(Principal.id).where(Principal.tenant_id == tenant_b.id))).scalars().first()
    assert principal_b is not None
    async with app.state.db.sessionmaker() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                await apply_scope(session, TenantScope.platform("tests"))
                session.add(RoleGrant(tenant_id=tenant_a.id, principal_id=principal_b,
                                      role="officer", node_id=tenant_a.id, id=uuid.uuid4()))
                await session.flush()


def test_scope_folds_nested_prefixes() -> None:
    scope = TenantScope.of_paths(["/a/b/", "/a/", "/c/"])
    assert scope.prefixes == ("/a/", "/c/")
    assert scope.covers("/a/b/x/") and not scope.covers("/b/")


# Where an alias is safe: the principal load and the delivery worker's claim run under the
# platform scope only (they set it themselves), where the application-side criteria add nothing.
ALIASES_ALLOWED = {"app/identity/principals.py", "app/deliveries/worker.py"}


def test_repositories_do_not_alias_scoped_models() -> None:
    """Aliased entities escape the application-side criteria (see app.tenancy.scope)."""
    offenders = [
        str(path) for path in Path("app").rglob("*.py")
        if re.search(r"^(?!.*``).*\baliased\(", path.read_text(encoding="utf-8"), re.M)
        and str(path) not in ALIASES_ALLOWED
    ]
    assert offenders == []


def test_the_principal_load_runs_under_the_platform_scope_only() -> None:
    """The one allowed alias is only executed after the loader sets the platform scope."""
    source = Path("app/identity/principals.py").read_text(encoding="utf-8")
    body = source[source.index("async def load("):]
    assert body.index('apply_scope(session, TenantScope.platform(') < body.index(
        "session.execute(")


async def test_every_statement_form_is_scoped(app: Any, platform: Platform) -> None:
    """Counting, subqueries, EXISTS, CTEs and unions see only the scope, on both backends
    (on SQLite the application wall is the only one)."""
    from sqlalchemy import exists, func, union_all

    from app.identity.models import ApiClient

    a, admin_a = await platform.province_with_admin()
    await platform.tenant(a, "commune", by=admin_a)
    b, _ = await platform.province_with_admin()
    tenant_a, tenant_b = await _tenant(app, a), await _tenant(app, b)
    probes = {
        "count": (select(func.count()).select_from(Tenant), 2),
        "scalar subquery": (select(select(Tenant.code).where(Tenant.id == tenant_b.id)
                                   .scalar_subquery()), None),
        "exists": (select(exists().where(Tenant.id == tenant_b.id)), False),
        "from subquery": (select(func.count()).select_from(select(Tenant.id).subquery()), 2),
        "union": (select(func.count()).select_from(
            union_all(select(Tenant.id), select(Tenant.id)).subquery()), 4),
        "cte": (select(func.count()).select_from(select(Tenant.id).cte()), 2),
        "other model in subquery": (select(func.count()).select_from(
            select(ApiClient.client_id).where(ApiClient.tenant_id == tenant_b.id).subquery()),
            0),
    }
    for name, (statement, expected) in probes.items():
        async with app.state.db.sessionmaker() as session, session.begin():
            await apply_scope(session, TenantScope.of_paths([tenant_a.path]))
            assert (await session.execute(statement)).scalar() == expected, name


async def test_bulk_insert_is_refused_outside_platform_scope(app: Any,
                                                             platform: Platform) -> None:
    from sqlalchemy import insert

    a, _ = await platform.province_with_admin()
    tenant_a = await _tenant(app, a)
    async with app.state.db.sessionmaker() as session:
        with pytest.raises(ScopeViolation):
            async with session.begin():
                await apply_scope(session, TenantScope.of_paths([tenant_a.path]))
                await session.execute(insert(Principal).values(
                    tenant_id=tenant_a.id, id=uuid.uuid4(), kind="client", status="active"))


async def test_grant_for_a_node_outside_the_scope_is_refused(app: Any, backend: Any,
                                                             platform: Platform) -> None:
    """Both walls check every tenant a new row names, not only its tenant_id."""
    from sqlalchemy import text

    from app.identity.callers import Operator
    from app.identity.clients import create_client

    a, _ = await platform.province_with_admin()
    b, _ = await platform.province_with_admin()
    tenant_a, tenant_b = await _tenant(app, a), await _tenant(app, b)
    async with app.state.db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("tests"))
        view, _ = await create_client(session, caller=Operator("tests"), tenant=tenant_a,
                                      name="x", roles=["officer"])
    async with app.state.db.sessionmaker() as session:
        with pytest.raises(ScopeViolation):
            async with session.begin():
                await apply_scope(session, TenantScope.of_paths([tenant_a.path]))
                await session.execute(select(Tenant).where(Tenant.id == tenant_a.id))
                session.add(RoleGrant(tenant_id=tenant_a.id, principal_id=view.client.principal_id,
                                      role="tenant_admin", node_id=tenant_b.id))
                await session.flush()
    if backend.is_postgresql:  # the database refuses it too, even past the application
        from sqlalchemy.exc import ProgrammingError
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(backend.settings.effective_database_url)
        try:
            with pytest.raises(ProgrammingError, match="row-level security"):
                async with engine.begin() as conn:
                    await conn.execute(text("SELECT set_config('nentang.scope', :s, true)"),
                                       {"s": tenant_a.path})
                    await conn.execute(text(
                        "INSERT INTO role_grants (tenant_id, id, principal_id, role, node_id, "
                        "created_at) VALUES (:t, :i, :p, 'tenant_admin', :n, now())"),
                        {"t": tenant_a.id, "i": uuid.uuid4(), "p": view.client.principal_id,
                         "n": tenant_b.id})
        finally:
            await engine.dispose()



def test_repositories_use_mapped_classes_not_core_tables() -> None:
    """`Model.__table__` and raw `text()` on tenant tables escape the application wall (loader
    criteria see ORM entities only); only RLS would catch them, and SQLite has no RLS."""
    allowed_text = {"app/tenancy/scope.py", "app/core/db.py", "app/core/health.py",
                    "app/core/migrations.py", "app/core/roles.py",
                    # partial indexes' DDL predicates, not queries
                    "app/tenancy/models.py", "app/forms/models.py", "app/workflows/models.py",
                    "app/cases/models.py", "app/deliveries/models.py"}
    offenders = []
    for path in Path("app").rglob("*.py"):
        source = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                            if "``" not in line)  # prose in docstrings
        if "__table__" in source:
            offenders.append(f"{path}: __table__")
        if re.search(r"\btext\(", source) and str(path) not in allowed_text:
            offenders.append(f"{path}: text()")
    assert offenders == []


async def test_inherited_definitions_are_read_only_below(app: Any, platform: Platform) -> None:
    """The app wall lets a commune read its province's roles, never change or delete them."""
    from sqlalchemy import delete, update

    from app.identity.models import Role

    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    sibling, _ = await platform.province_with_admin()
    await platform.role_for(province, "scope_inherited", ["cases:read"], by=admin)
    await platform.role_for(sibling, "scope_foreign", ["cases:read"])
    commune_path = (await _tenant(app, commune)).path
    async with app.state.db.sessionmaker() as session:
        await apply_scope(session, TenantScope.of_paths([commune_path]))
        for statement in (update(Role).values(name="x"), delete(Role)):
            assert (await session.execute(statement)).rowcount == 0  # type: ignore[attr-defined]
        roles = {r.key: r for r in (await session.execute(select(Role))).scalars()}
        assert "scope_inherited" in roles and "scope_foreign" not in roles
        assert roles["scope_inherited"].name == "scope_inherited"
        roles["scope_inherited"].name = "changed below"
        with pytest.raises(ScopeViolation):
            await session.flush()
        await session.rollback()
