"""Resolve the ``{tenant}`` path segment to a tenant the caller can see, or 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from opentelemetry import trace

from app.core.requests import set_tenant_code
from app.identity.auth import ScopedSession
from app.tenancy import service
from app.tenancy.models import Tenant
from app.tenancy.schemas import TENANT_CODE_PATTERN

TenantPathCode = Annotated[
    str, Path(alias="tenant", pattern=TENANT_CODE_PATTERN, description="Tenant code")
]


async def acting_tenant(session: ScopedSession, code: TenantPathCode) -> Tenant:
    set_tenant_code(code)
    trace.get_current_span().set_attribute("nentang.tenant", code)
    return await service.get_visible(session, code)


ActingTenant = Annotated[Tenant, Depends(acting_tenant)]
