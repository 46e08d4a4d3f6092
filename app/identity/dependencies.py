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
