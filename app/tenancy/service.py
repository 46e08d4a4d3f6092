"""Creating, reading and changing tenants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.audit import service as audit
from app.core.db import new_id, utcnow
from app.core.problems import Problem, conflict, invalid, not_found, precondition_failed
from app.identity.callers import Caller
from app.identity.permissions import Permission
from app.identity.policy import authorize
from app.tenancy import repository
from app.tenancy.models import (
    ALLOWED_CHILD_KINDS,
    Tenant,
    TenantKind,
    TenantStatus,
    child_path,
)
from app.tenancy.schemas import TenantCreate, TenantOut, TenantUpdate


def snapshot(tenant: Tenant) -> dict[str, Any]:
    """What the audit trail keeps of a tenant (no ids: the trail is readable down the tree)."""
    return {"code": tenant.code, "name": tenant.name, "kind": tenant.kind,
            "status": tenant.status}


def to_out(tenant: Tenant, parent_code: str | None) -> TenantOut:
    return TenantOut(
        id=tenant.id, code=tenant.code, name=tenant.name, kind=TenantKind(tenant.kind),
        status=TenantStatus(tenant.status), parent=parent_code, depth=tenant.depth,
        version=tenant.version, created_at=tenant.created_at, updated_at=tenant.updated_at,
    )


def suspended(tenant: Tenant) -> Problem:
    return conflict("tenant-suspended", f"Tenant '{tenant.code}' is suspended: nothing in its "
                    "subtree can change until it is resumed.")


async def get_visible(session: AsyncSession, code: str) -> Tenant:
    tenant = await repository.get_by_code(session, code)
    if tenant is None:
        raise not_found("tenant", code)
    return tenant


async def _insert(session: AsyncSession, tenant: Tenant, *, actor: str) -> None:
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise conflict("tenant-code-taken",
                       f"The code '{tenant.code}' is already in use on this platform.") from exc
    await audit.record(session, tenant_id=tenant.id, actor=actor, action="tenant.create",
                       resource_type="tenant", resource_id=tenant.code, after=snapshot(tenant))


async def create_root(session: AsyncSession, *, code: str, name: str, actor: str) -> Tenant:
    tenant_id = new_id()
    now = utcnow()
    tenant = Tenant(id=tenant_id, code=code, name=name, kind=TenantKind.MINISTRY.value,
                    status=TenantStatus.ACTIVE.value, parent_id=None, path=f"/{tenant_id}/",
                    depth=0, created_at=now, updated_at=now)
    await _insert(session, tenant, actor=actor)
    return tenant


def check_child_kind(parent: Tenant, kind: TenantKind, pointer: str = "/kind") -> None:
    allowed = ALLOWED_CHILD_KINDS[TenantKind(parent.kind)]
    if kind not in allowed:
        names = ", ".join(sorted(allowed))
        raise invalid(pointer, f"A {parent.kind} can hold only: {names}; not a {kind}.",
                      code="tenant-kind-not-allowed")


async def create_child(
    session: AsyncSession, *, caller: Caller, data: TenantCreate, parent: Tenant
) -> Tenant:
    """Create ``data`` under ``parent``, which the caller has already resolved (it also keys
    the idempotency record, so it is looked up once)."""
    authorize(caller, Permission.TENANTS_WRITE, parent)
    check_child_kind(parent, data.kind)
    await lock_active_lineage(session, parent)
    tenant_id = new_id()
    now = utcnow()
    tenant = Tenant(
        id=tenant_id, code=data.code, name=data.name, kind=data.kind.value,
        status=TenantStatus.ACTIVE.value, parent_id=parent.id,
        path=child_path(parent.path, tenant_id), depth=parent.depth + 1,
        created_at=now, updated_at=now,
    )
    await _insert(session, tenant, actor=caller.actor)
    return tenant


async def update(
    session: AsyncSession, *, caller: Caller, tenant: Tenant, data: TenantUpdate,
    expected_version: int | None,
) -> Tenant:
    authorize(caller, Permission.TENANTS_WRITE, tenant)
    lineage = await repository.lock_lineage(session, tenant, exclusive=True)
    if expected_version is not None and expected_version != tenant.version:
        raise version_mismatch(tenant)
    before = snapshot(tenant)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "status" in changes and changes["status"] != tenant.status:
        authorize(caller, Permission.TENANTS_WRITE, tenant, from_ancestor=True)
    elif changes:
        ensure_active(lineage)
    for field, value in changes.items():
        setattr(tenant, field, value.value if hasattr(value, "value") else value)
    if snapshot(tenant) == before:
        return tenant
    tenant.updated_at = utcnow()
    try:
        await session.flush()
    except StaleDataError as exc:  # the row lock makes this unreachable; never a 500 anyway
        raise version_mismatch(tenant) from exc
    action = "tenant.update"
    if "status" in changes and before["status"] != tenant.status:
        action = "tenant.suspend" if tenant.status == TenantStatus.SUSPENDED else "tenant.resume"
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action=action,
                       resource_type="tenant", resource_id=tenant.code, before=before,
                       after=snapshot(tenant))
    return tenant


def version_mismatch(tenant: Tenant) -> Problem:
    return precondition_failed(f"The tenant is at version {tenant.version}; reload and retry.")


def ensure_active(lineage: Sequence[Tenant]) -> None:
    blocked = next((t for t in lineage if t.status != TenantStatus.ACTIVE), None)
    if blocked is not None:
        raise suspended(blocked)


async def lock_active_lineage(session: AsyncSession, tenant: Tenant) -> None:
    """Refuse writes under a suspended tenant. The lineage stays share-locked until commit,
    so a concurrent suspension waits for this write instead of racing it."""
    ensure_active(await repository.lock_lineage(session, tenant))
