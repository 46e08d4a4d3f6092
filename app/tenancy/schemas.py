from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.validation import Name
from app.identity.access_schemas import UserCreated, UserFields
from app.tenancy.models import TenantKind, TenantStatus

TENANT_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,31}$"
TenantCode = Annotated[
    str,
    StringConstraints(pattern=TENANT_CODE_PATTERN),
    Field(description="Platform-wide unique code: upper-case letters, digits, '_' and '-'.",
          examples=["BNV", "01", "00070"]),
]
TenantName = Name


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: TenantCode
    name: TenantName
    kind: TenantKind
    parent: TenantCode = Field(description="Code of the parent tenant.")
    admin: UserFields | None = Field(
        default=None, description="The unit's first administrator, created in the same "
        "transaction with the tenant_admin role; it can sign in at once.")


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TenantName | None = None
    status: TenantStatus | None = None


class TenantOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    kind: TenantKind
    status: TenantStatus
    parent: str | None = Field(
        description="Parent code; null for the root and when the parent is outside the "
        "caller's visible tree."
    )
    depth: int
    version: int
    created_at: datetime
    updated_at: datetime


class TenantCreated(TenantOut):
    admin: UserCreated | None = Field(default=None,
                                      description="The first administrator, when requested.")
