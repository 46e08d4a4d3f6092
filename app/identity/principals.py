"""A principal's live state: status, grants and what each grant's role allows.

Read on every request and at every token issuance, so disabling a user or client, revoking a
grant, editing a custom role or suspending a tenant takes effect at once. Three statements at
most, all by primary key or a short index range:

1. the principal, its grants with each node's path, and a client's rate limit (one join);
2. which tenants on those paths are suspended (primary-key lookups);
3. the permissions of any custom roles granted.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.problems import Problem
from app.identity.callers import Grant, Principal
from app.identity.models import ApiClient, PrincipalStatus, Role, RoleGrant, User
from app.identity.models import Principal as PrincipalRow
from app.identity.permissions import Permission, builtin_permissions, known_permissions
from app.identity.tokens import invalid_token
from app.tenancy.models import Tenant, TenantStatus
from app.tenancy.scope import TenantScope, apply_scope


def path_ids(path: str) -> list[uuid.UUID]:
    return [uuid.UUID(part) for part in path.strip("/").split("/") if part]


def _home_lineage(home: uuid.UUID, grant_paths: list[str]) -> list[uuid.UUID] | None:
    """The home tenant and its ancestors, read off a grant's path (grants lie at the home
    or below it, so their paths run through it); None without grants."""
    for path in grant_paths:
        ids = path_ids(path)
        if home in ids:
            return ids[: ids.index(home) + 1]
    return None


def tenant_suspended(detail: str) -> Problem:
    return Problem(403, "unit-suspended", "Đơn vị của bạn đang bị tạm dừng",
                   "Your unit is suspended", detail=detail)


def account_disabled() -> Problem:
    return invalid_token("the account is disabled or no longer exists")


# Built once: these run on every request, and building a five-way join costs more CPU than
# executing it.
_PRINCIPAL_AND_GRANTS = (
    select(PrincipalRow.kind, PrincipalRow.status, User.username, ApiClient.client_id,
           ApiClient.rate_limit_per_minute, ApiClient.scopes.label("client_scopes"),
           RoleGrant.role, RoleGrant.role_tenant_id, Tenant.id, Tenant.path)
    .select_from(PrincipalRow)
    .outerjoin(User, and_(User.tenant_id == PrincipalRow.tenant_id,
                          User.principal_id == PrincipalRow.id))
    .outerjoin(ApiClient, and_(ApiClient.tenant_id == PrincipalRow.tenant_id,
                               ApiClient.principal_id == PrincipalRow.id))
    .outerjoin(RoleGrant, and_(RoleGrant.tenant_id == PrincipalRow.tenant_id,
                               RoleGrant.principal_id == PrincipalRow.id))
    .outerjoin(Tenant, Tenant.id == RoleGrant.node_id)
    .where(PrincipalRow.tenant_id == bindparam("home"), PrincipalRow.id == bindparam("principal"))
)
_HOME_PATH = select(Tenant.path).where(Tenant.id == bindparam("home"))
_SUSPENDED = select(Tenant.id).where(Tenant.id.in_(bindparam("ids", expanding=True)),
                                     Tenant.status != TenantStatus.ACTIVE.value)


async def load(
    session: AsyncSession, principal_id: uuid.UUID, home_tenant_id: uuid.UUID, *,
    client_id: str, scopes: frozenset[Permission] | None = None,
) -> Principal:
    """The principal as it is now. Raises 401 when it is gone or disabled, 403 when its home
    tenant or an ancestor is suspended. Grants at nodes under a suspended tenant are dropped.

    Runs under the platform scope: the principal's home may lie above every node it holds
    grants on."""
    await apply_scope(session, TenantScope.platform("load principal"))
    rows = (await session.execute(
        _PRINCIPAL_AND_GRANTS, {"home": home_tenant_id, "principal": principal_id})).all()
    if not rows or rows[0].status != PrincipalStatus.ACTIVE:
        raise account_disabled()
    first = rows[0]
    name = first.username or first.client_id or str(principal_id)
    granted = [r for r in rows if r.role is not None and r.path is not None]

    lineage = {home_tenant_id, *(i for r in granted for i in path_ids(r.path))}
    suspended = set((await session.execute(_SUSPENDED, {"ids": sorted(lineage)})).scalars())
    home_lineage = _home_lineage(home_tenant_id, [r.path for r in granted])
    if home_lineage is None:  # no grants to read the home's path from: look it up
        home_path = (await session.execute(_HOME_PATH, {"home": home_tenant_id})).scalar_one()
        home_lineage = path_ids(home_path)
        suspended = set((await session.execute(_SUSPENDED, {"ids": home_lineage})).scalars())
    if suspended.intersection(home_lineage):
        raise tenant_suspended("Your unit, or a unit above it, is suspended; no request can "
                               "be served for it.")

    custom_keys = sorted({(r.role_tenant_id, r.role) for r in granted
                          if r.role_tenant_id is not None})
    custom: dict[tuple[uuid.UUID, str], frozenset[Permission]] = {}
    if custom_keys:
        for tenant_id, key, names in (await session.execute(
            select(Role.tenant_id, Role.key, Role.permissions)
            .where(tuple_(Role.tenant_id, Role.key).in_(custom_keys))
        )).all():
            custom[(tenant_id, key)] = known_permissions(names)

    grants: list[Grant] = []
    for r in granted:
        if suspended.intersection(path_ids(r.path)):
            continue
        allowed: frozenset[Permission] = (
            custom.get((r.role_tenant_id, r.role), frozenset()) if r.role_tenant_id is not None
            else builtin_permissions(r.role) or frozenset())
        grants.append(Grant(r.role, r.id, r.path, allowed))
    if first.client_scopes is not None:
        # A client's allowed scopes are read live too: narrowing them narrows tokens
        # already issued, on their next request.
        allowed = known_permissions(first.client_scopes)
        scopes = allowed if scopes is None else scopes & allowed
    return Principal(id=principal_id, kind=first.kind, name=name, client_id=client_id,
                     home_tenant_id=home_tenant_id, grants=tuple(grants), scopes=scopes,
                     rate_limit_per_minute=first.rate_limit_per_minute)


def token_claims(principal: Principal) -> dict[str, Any]:
    claims: dict[str, Any] = {"tid": str(principal.home_tenant_id), "kind": principal.kind,
                              "client_id": principal.client_id, "name": principal.name}
    if principal.scopes is not None:
        claims["scope"] = " ".join(sorted(principal.scopes))
    return claims


async def from_token(session: AsyncSession, claims: dict[str, Any]) -> Principal:
    try:
        principal_id = uuid.UUID(claims["sub"])
        home = uuid.UUID(claims["tid"])
        client_id = str(claims["client_id"])
        scope = claims.get("scope")
        scopes = (frozenset(Permission(s) for s in str(scope).split())
                  if scope is not None else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid_token("the token lacks the platform's claims") from exc
    return await load(session, principal_id, home, client_id=client_id, scopes=scopes)
