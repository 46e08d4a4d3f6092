"""Grants: (principal, role, tenant node), covering the node's subtree.

A grant's row lives in the principal's home tenant, so a commune admin never sees a
province official who holds a role over its commune. The node must be the principal's home
or below it. Granting and revoking follow the delegation rule
(:func:`app.identity.policy.check_delegable`), and both are audited at the node.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.problems import conflict, invalid, not_found
from app.identity import roles
from app.identity.callers import Caller
from app.identity.models import ApiClient, RoleGrant, User, of_principal
from app.identity.models import Principal as PrincipalRow
from app.identity.permissions import Permission
from app.identity.policy import authorize, check_delegable
from app.tenancy import repository as tenants
from app.tenancy.models import Tenant, path_upper
from app.tenancy.service import lock_active_lineage


@dataclass
class GrantView:
    grant: RoleGrant
    principal_kind: str
    principal_name: str
    node_code: str


def _snapshot(grant: RoleGrant, name: str) -> dict[str, object]:
    return {"principal_id": str(grant.principal_id), "principal": name, "role": grant.role}


async def _principal(session: AsyncSession, principal_id: uuid.UUID) -> tuple[PrincipalRow, str]:
    row = (await session.execute(
        select(PrincipalRow, User.username, ApiClient.client_id)
        .outerjoin(User, of_principal(User))
        .outerjoin(ApiClient, of_principal(ApiClient))
        .where(PrincipalRow.id == principal_id)
    )).first()
    if row is None:
        raise not_found("principal", str(principal_id))
    return row[0], row[1] or row[2] or str(principal_id)


async def create(session: AsyncSession, *, caller: Caller, node: Tenant,
                 principal_id: uuid.UUID, role_key: str) -> GrantView:
    authorize(caller, Permission.GRANTS_WRITE, node)
    role = await roles.resolve(session, node, role_key)
    check_delegable(caller, node, role.permissions, f"Role '{role_key}'")
    principal, name = await _principal(session, principal_id)
    home = (await tenants.by_ids(session, [principal.tenant_id])).get(principal.tenant_id)
    if home is None or not node.path.startswith(home.path):
        raise invalid("/principal_id", f"The principal belongs to a unit that is not "
                      f"'{node.code}' or above it; grant it a role in its own unit's subtree.",
                      code="grant-outside-home")
    await lock_active_lineage(session, node)
    existing = (await session.execute(
        select(RoleGrant.id).where(RoleGrant.tenant_id == principal.tenant_id,
                                   RoleGrant.principal_id == principal.id,
                                   RoleGrant.role == role.key, RoleGrant.node_id == node.id)
    )).first()
    if existing is not None:
        raise conflict("grant-exists", f"'{name}' already holds '{role.key}' at '{node.code}'.")
    grant = RoleGrant(tenant_id=principal.tenant_id, principal_id=principal.id, role=role.key,
                      role_tenant_id=role.tenant_id, node_id=node.id, granted_by=caller.actor)
    session.add(grant)
    await session.flush()
    await audit.record(session, tenant_id=node.id, actor=caller.actor, action="grant.create",
                       resource_type="grant", resource_id=str(grant.id),
                       after=_snapshot(grant, name))
    return GrantView(grant, principal.kind, name, node.code)


async def list_grants(session: AsyncSession, node: Tenant, *, recursive: bool,
                      principal_id: uuid.UUID | None, after_id: uuid.UUID | None,
                      limit: int) -> Sequence[GrantView]:
    """Grants at ``node`` (or anywhere in its subtree) that the caller can see."""
    stmt = (
        select(RoleGrant, PrincipalRow.kind, User.username, ApiClient.client_id, Tenant.code)
        .join(PrincipalRow, of_principal(RoleGrant))
        .outerjoin(User, of_principal(User))
        .outerjoin(ApiClient, of_principal(ApiClient))
        .join(Tenant, Tenant.id == RoleGrant.node_id)
        .order_by(RoleGrant.id)
        .limit(limit)
    )
    if recursive:
        stmt = stmt.where(Tenant.path >= node.path, Tenant.path < path_upper(node.path))
    else:
        stmt = stmt.where(RoleGrant.node_id == node.id)
    if principal_id is not None:
        stmt = stmt.where(RoleGrant.principal_id == principal_id)
    if after_id is not None:
        stmt = stmt.where(RoleGrant.id > after_id)
    return [GrantView(g, kind, username or client_id or str(g.principal_id), code)
            for g, kind, username, client_id, code in (await session.execute(stmt)).all()]


async def revoke(session: AsyncSession, *, caller: Caller, node: Tenant,
                 grant_id: uuid.UUID) -> None:
    authorize(caller, Permission.GRANTS_WRITE, node)
    grant = (await session.execute(
        select(RoleGrant).where(RoleGrant.id == grant_id, RoleGrant.node_id == node.id)
    )).scalar_one_or_none()
    if grant is None:
        raise not_found("grant", str(grant_id))
    check_delegable(caller, node, await roles.granted(session, grant.role, grant.role_tenant_id),
                    f"Revoking '{grant.role}'")
    _, name = await _principal(session, grant.principal_id)
    await lock_active_lineage(session, node)
    before = _snapshot(grant, name)
    await session.delete(grant)
    await session.flush()
    await audit.record(session, tenant_id=node.id, actor=caller.actor, action="grant.revoke",
                       resource_type="grant", resource_id=str(grant_id), before=before)


async def check_may_manage(session: AsyncSession, caller: Caller, tenant: Tenant,
                           home_id: uuid.UUID, principal_id: uuid.UUID) -> None:
    """Managing a principal (disabling it, resetting its password or secret) is taking over
    what it holds: the caller must hold, at the principal's home ``tenant``, every permission
    of each of its roles (a grant below the home is covered, since grants cover subtrees)."""
    held = (await session.execute(
        select(RoleGrant.role, RoleGrant.role_tenant_id)
        .where(RoleGrant.tenant_id == home_id, RoleGrant.principal_id == principal_id)
        .distinct()
    )).all()
    await _check_holds_all(session, caller, tenant, held, "Managing a holder of")


async def check_may_manage_linked_users(session: AsyncSession, caller: Caller,
                                        tenant: Tenant) -> None:
    """Choosing the identity provider of ``tenant`` decides who signs in as every user linked
    to one (``external_id``) there and below: the caller must hold all their permissions."""
    held = (await session.execute(
        select(RoleGrant.role, RoleGrant.role_tenant_id)
        .join(User, and_(User.tenant_id == RoleGrant.tenant_id,
                         User.principal_id == RoleGrant.principal_id))
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(User.external_id.is_not(None), Tenant.path >= tenant.path,
               Tenant.path < path_upper(tenant.path))
        .distinct()
    )).all()
    await _check_holds_all(session, caller, tenant, held,
                           "Changing the identity provider of users holding")


async def _check_holds_all(session: AsyncSession, caller: Caller, tenant: Tenant,
                           held: Sequence[Any], what: str) -> None:
    for key, role_tenant_id in sorted(held, key=lambda r: (r[0], str(r[1]))):
        check_delegable(caller, tenant, await roles.granted(session, key, role_tenant_id),
                        f"{what} '{key}'")
