"""A principal's live state: status, grants and what each grant's role allows.

Read on every request and at every token issuance, so disabling a user or client, revoking a
grant, editing a custom role or suspending a tenant takes effect at once. One statement: the
principal, its grants with each node's path, whether a suspended tenant lies on that path,
the permissions of custom roles and a client's limits.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.problems import Problem
from app.identity.callers import Grant, Principal
from app.identity.models import ApiClient, PrincipalStatus, Role, RoleGrant, User, of_principal
from app.identity.models import Principal as PrincipalRow
from app.identity.permissions import Permission, builtin_permissions, known_permissions
from app.identity.tokens import invalid_token
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope


def path_ids(path: str) -> list[uuid.UUID]:
    return [uuid.UUID(part) for part in path.strip("/").split("/") if part]


def tenant_suspended(detail: str) -> Problem:
    return Problem(403, "unit-suspended", "Đơn vị của bạn đang bị tạm dừng",
                   "Your unit is suspended", detail=detail)


def account_disabled() -> Problem:
    return invalid_token("the account is disabled or no longer exists")


# Suspended tenants: a handful at most, found through a partial index (see the model), so the
# check below costs almost nothing when nothing is suspended.
_Suspended = aliased(Tenant, name="suspended")  # platform scope only, see load()
# A literal rather than a bound value, so the partial index's predicate matches.
_NOT_ACTIVE: ColumnElement[str] = literal_column("'active'")
_UNDER_SUSPENDED = exists().where(
    _Suspended.status != _NOT_ACTIVE,
    func.substr(Tenant.path, 1, func.length(_Suspended.path)) == _Suspended.path,
)

# Built once: it runs on every request, and building this join costs more CPU than running
# it. One row per grant, with its node's path, whether a suspended tenant lies on that path,
# and the permissions of a custom role.
_PRINCIPAL_AND_GRANTS = (
    select(PrincipalRow.kind, PrincipalRow.status, User.username, ApiClient.client_id,
           ApiClient.rate_limit_per_minute, ApiClient.scopes.label("client_scopes"),
           RoleGrant.role, RoleGrant.role_tenant_id, Tenant.id, Tenant.path,
           _UNDER_SUSPENDED.label("blocked"), Role.permissions.label("custom_permissions"))
    .select_from(PrincipalRow)
    .outerjoin(User, of_principal(User))
    .outerjoin(ApiClient, of_principal(ApiClient))
    .outerjoin(RoleGrant, of_principal(RoleGrant))
    .outerjoin(Tenant, Tenant.id == RoleGrant.node_id)
    .outerjoin(Role, and_(Role.tenant_id == RoleGrant.role_tenant_id,
                          Role.key == RoleGrant.role))
    .where(PrincipalRow.tenant_id == bindparam("home"), PrincipalRow.id == bindparam("principal"))
)
_HOME_SUSPENDED = select(_UNDER_SUSPENDED).select_from(Tenant).where(
    Tenant.id == bindparam("home"))


async def load(
    session: AsyncSession, principal_id: uuid.UUID, home_tenant_id: uuid.UUID, *,
    client_id: str, scopes: frozenset[Permission] | None = None,
) -> Principal:
    """The principal as it is now. Raises 401 when it is gone or disabled, 403 when its home
    tenant or an ancestor is suspended. Grants at nodes under a suspended tenant are dropped.

    Runs under the platform scope: the principal's home may lie above every node it holds
    grants on. One statement, plus one more only when no grant is usable (to tell a
    suspended unit from a principal without rights)."""
    await apply_scope(session, TenantScope.platform("load principal"))
    rows = (await session.execute(
        _PRINCIPAL_AND_GRANTS, {"home": home_tenant_id, "principal": principal_id})).all()
    if not rows or rows[0].status != PrincipalStatus.ACTIVE:
        raise account_disabled()
    first = rows[0]
    name = first.username or first.client_id or str(principal_id)
    usable = [r for r in rows if r.role is not None and r.path is not None and not r.blocked]
    # Grants lie at the home or below it: if one is usable, no tenant above the home is
    # suspended. Otherwise ask about the home itself.
    if not usable and (await session.execute(
            _HOME_SUSPENDED, {"home": home_tenant_id})).scalar():
        raise tenant_suspended("Your unit, or a unit above it, is suspended; no request can "
                               "be served for it.")
    grants = tuple(
        Grant(r.role, r.id, r.path,
              known_permissions(r.custom_permissions) if r.role_tenant_id is not None
              else builtin_permissions(r.role) or frozenset())
        for r in usable)
    if first.client_scopes is not None:
        # A client's allowed scopes are read live too: narrowing them narrows tokens
        # already issued, on their next request.
        allowed = known_permissions(first.client_scopes)
        scopes = allowed if scopes is None else scopes & allowed
    return Principal(id=principal_id, kind=first.kind, name=name, client_id=client_id,
                     home_tenant_id=home_tenant_id, grants=grants, scopes=scopes,
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
