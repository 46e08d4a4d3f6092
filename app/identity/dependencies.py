"""FastAPI dependencies that declare an endpoint's required permission::

    access: Annotated[Access, Depends(Requires(Permission.USERS_READ))]

The dependency resolves ``{tenant}`` (404 when the caller cannot see it) and asks
:func:`app.identity.policy.authorize` (403 when it can see but may not act).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends

from app.identity.auth import CurrentPrincipal
from app.identity.callers import Principal
from app.identity.permissions import Permission
from app.identity.policy import authorize
from app.tenancy.dependencies import ActingTenant
from app.tenancy.models import Tenant


@dataclass(frozen=True)
class Access:
    """An authorised request: who, where, and what it was authorised for."""

    principal: Principal
    tenant: Tenant
    permission: Permission


class Requires:
    """Dependency declaring the permission an endpoint needs on its ``{tenant}``."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, principal: CurrentPrincipal, tenant: ActingTenant) -> Access:
        authorize(principal, self.permission, tenant)
        return Access(principal, tenant, self.permission)


def needs(permission: Permission) -> Any:
    """``Annotated[Access, needs(Permission.X)]``: the endpoint requires ``X`` on ``{tenant}``."""
    return Depends(Requires(permission))


class RequiresAny(Requires):
    """Dependency for an endpoint that any one of several permissions opens (the service
    then decides what each allows, e.g. reading a case with ``cases:read``, or with
    ``cases:act`` only while the caller may act on it). ``Access.permission`` is the first
    one held."""

    def __init__(self, *permissions: Permission) -> None:
        super().__init__(permissions[0])
        self.permissions = permissions

    async def __call__(self, principal: CurrentPrincipal, tenant: ActingTenant) -> Access:
        held = principal.permissions_at(tenant.path)
        for permission in self.permissions:
            if permission in held:
                return Access(principal, tenant, permission)
        authorize(principal, self.permission, tenant)  # raises the usual 403
        raise AssertionError("unreachable")


def needs_any(*permissions: Permission) -> Any:
    """``Annotated[Access, needs_any(P.X, P.Y)]``: the endpoint requires one of them."""
    return Depends(RequiresAny(*permissions))
