"""Custom roles: named sets of permissions a tenant admin defines without code.

A role defined at a tenant is usable there and everywhere below it; the nearest definition
wins when a descendant reuses a key. Built-in role keys cannot be redefined. Defining,
changing and deleting a role follow the delegation rule: only with permissions the caller
holds itself, so a role is never a way to escalate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.problems import Problem, conflict, invalid, not_found
from app.identity.callers import Caller
from app.identity.models import Role, RoleGrant
from app.identity.permissions import (
    BUILTIN_ROLES,
    ROLE_DESCRIPTIONS,
    Permission,
    builtin_permissions,
)
from app.identity.policy import authorize, check_delegable
from app.identity.principals import path_ids
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage


@dataclass(frozen=True)
class ResolvedRole:
    key: str
    name: str
    description: str | None
    permissions: frozenset[Permission]
    tenant_id: uuid.UUID | None  # None: built-in

    @property
    def builtin(self) -> bool:
        return self.tenant_id is None


def _builtin(key: str) -> ResolvedRole | None:
    perms = builtin_permissions(key)
    if perms is None:
        return None
    return ResolvedRole(key, key.replace("_", " ").capitalize(), ROLE_DESCRIPTIONS.get(key),
                        perms, None)


def _custom(role: Role) -> ResolvedRole:
    return ResolvedRole(role.key, role.name, role.description,
                        frozenset(Permission(p) for p in role.permissions), role.tenant_id)


async def usable_at(session: AsyncSession, tenant: Tenant) -> list[ResolvedRole]:
    """Built-in roles, then the custom roles usable at ``tenant`` (nearest definition wins)."""
    lineage = path_ids(tenant.path)
    depth = {tenant_id: index for index, tenant_id in enumerate(lineage)}
    rows = (await session.execute(
        select(Role).where(Role.tenant_id.in_(lineage))
    )).scalars().all()
    nearest: dict[str, Role] = {}
    for role in sorted(rows, key=lambda r: depth[r.tenant_id]):
        nearest[role.key] = role
    builtin = [r for r in (_builtin(k) for k in BUILTIN_ROLES) if r is not None]
    return builtin + [_custom(nearest[k]) for k in sorted(nearest)]


async def resolve(session: AsyncSession, tenant: Tenant, key: str,
                  pointer: str = "/role") -> ResolvedRole:
    builtin = _builtin(key)
    if builtin is not None:
        return builtin
    lineage = path_ids(tenant.path)
    rows = (await session.execute(
        select(Role).where(Role.key == key, Role.tenant_id.in_(lineage))
    )).scalars().all()
    if not rows:
        raise invalid(pointer, f"No role '{key}' is defined at '{tenant.code}' or above it.",
                      code="unknown-role")
    return _custom(max(rows, key=lambda r: lineage.index(r.tenant_id)))


async def granted(session: AsyncSession, key: str,
                  role_tenant_id: uuid.UUID | None) -> frozenset[Permission]:
    """What the role named by a grant allows: exactly the definition the grant points at
    (not a same-named role nearer the node). One the caller cannot see counts as everything,
    so it can never look weaker than it is."""
    if role_tenant_id is None:
        return builtin_permissions(key) or frozenset(Permission)
    role = (await session.execute(
        select(Role).where(Role.tenant_id == role_tenant_id, Role.key == key))
    ).scalar_one_or_none()
    return _custom(role).permissions if role is not None else frozenset(Permission)


def _check_key(key: str) -> None:
    if key in BUILTIN_ROLES:
        raise invalid("/key", f"'{key}' is a built-in role.", code="builtin-role")


async def _own(session: AsyncSession, tenant: Tenant, key: str) -> Role:
    role = (await session.execute(
        select(Role).where(Role.tenant_id == tenant.id, Role.key == key)
    )).scalar_one_or_none()
    if role is not None:
        return role
    if key in BUILTIN_ROLES:
        raise Problem(403, "builtin-role", "Vai trò dựng sẵn", "Built-in role",
                      detail=f"'{key}' is a built-in role and cannot be changed.")
    inherited = (await session.execute(
        select(Role.key).where(Role.key == key, Role.tenant_id.in_(path_ids(tenant.path)))
    )).first()
    if inherited is not None:
        raise Problem(403, "inherited-read-only", "Định nghĩa kế thừa", "Inherited definition",
                      detail=f"Role '{key}' is defined by an ancestor of '{tenant.code}' and can "
                             "be changed only there.")
    raise not_found("role", key)


def _snapshot(role: Role) -> dict[str, object]:
    return {"key": role.key, "name": role.name, "description": role.description,
            "permissions": sorted(role.permissions)}


async def create(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str, name: str,
                 description: str | None, permissions: list[Permission]) -> Role:
    authorize(caller, Permission.ROLES_WRITE, tenant)
    _check_key(key)
    check_delegable(caller, tenant, permissions, f"Role '{key}'")
    await lock_active_lineage(session, tenant)
    existing = (await session.execute(
        select(Role.key).where(Role.tenant_id == tenant.id, Role.key == key))).first()
    if existing is not None:
        raise conflict("role-exists", f"Role '{key}' already exists at '{tenant.code}'.")
    role = Role(tenant_id=tenant.id, key=key, name=name, description=description,
                permissions=sorted({p.value for p in permissions}))
    session.add(role)
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="role.create",
                       resource_type="role", resource_id=key, after=_snapshot(role))
    return role


async def update(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str, name: str,
                 description: str | None, permissions: list[Permission]) -> Role:
    """Replace a role's definition. The caller must hold both the old and the new
    permissions: changing a role changes what everyone holding it may do."""
    authorize(caller, Permission.ROLES_WRITE, tenant)
    role = await _own(session, tenant, key)
    new = sorted({p.value for p in permissions})
    check_delegable(caller, tenant, {Permission(p) for p in (*role.permissions, *new)},
                    f"Role '{key}'")
    await lock_active_lineage(session, tenant)
    before = _snapshot(role)
    role.name, role.description, role.permissions = name, description, new
    role.updated_at = utcnow()
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="role.update",
                       resource_type="role", resource_id=key, before=before,
                       after=_snapshot(role))
    return role


async def delete(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str) -> None:
    authorize(caller, Permission.ROLES_WRITE, tenant)
    role = await _own(session, tenant, key)
    check_delegable(caller, tenant, {Permission(p) for p in role.permissions}, f"Role '{key}'")
    await lock_active_lineage(session, tenant)
    in_use = (await session.execute(
        select(RoleGrant.id).where(RoleGrant.role_tenant_id == tenant.id, RoleGrant.role == key)
        .limit(1))).first()
    if in_use is not None:
        raise conflict("role-in-use", f"Role '{key}' is still granted; revoke its grants first.")
    before = _snapshot(role)
    await session.delete(role)
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="role.delete",
                       resource_type="role", resource_id=key, before=before)
