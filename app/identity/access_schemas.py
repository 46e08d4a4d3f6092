"""Request and response bodies for users, custom roles and grants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.validation import Name, safe_text
from app.identity.permissions import Permission

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{1,63}$"
Username = Annotated[
    str,
    StringConstraints(pattern=USERNAME_PATTERN),
    Field(description="Unique within the tenant: lower-case letters, digits, '.', '_', '@', "
          "'-'; 2 to 64 characters.", examples=["nguyen.van.a"]),
]
RoleKey = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$"),
    Field(description="Lower-case letters, digits and '_'.", examples=["ho_tich_officer"]),
]
ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
    Field(description="The value of the identity provider's matching claim, e.g. the "
          "citizen-ID number.", examples=["001099000123"]),
]
Email = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
                  AfterValidator(safe_text)]
Description = Annotated[str, StringConstraints(max_length=1000), AfterValidator(safe_text)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UserFields(BaseModel):
    """A new user's own fields; also the ``admin`` block of a new tenant."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    display_name: Name
    email: Email | None = None
    external_id: ExternalId | None = None
    password: Password | None = Field(
        default=None, description="Omit to have one generated and returned once.")
    totp_required: bool = Field(
        default=False, description="Require a TOTP code at local sign-in; the response "
        "carries the enrolment URI once.")


class UserCreate(UserFields):
    roles: list[RoleKey] = Field(default_factory=list, max_length=16,
                                 description="Roles granted at this tenant.")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Name | None = None
    email: Email | None = None
    external_id: ExternalId | None = None
    status: Literal["active", "disabled"] | None = None
    totp_required: bool | None = None


class UserOut(BaseModel):
    id: uuid.UUID
    tenant: str
    username: str
    display_name: str
    email: str | None
    external_id: str | None
    status: str
    totp_required: bool
    totp_enrolled: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime


class UserCreated(UserOut):
    initial_password: str | None = Field(
        default=None, description="Only when the password was generated. Shown once.")
    totp_uri: str | None = Field(default=None, description="otpauth:// URI, shown once.")


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password | None = Field(
        default=None, description="Omit to have one generated and returned once.")


class PasswordResetOut(BaseModel):
    initial_password: str | None = None


class TotpEnrolment(BaseModel):
    secret: str
    totp_uri: str


class BulkRowResult(BaseModel):
    row: int = Field(description="1-based row number (the CSV header is row 0).")
    status: Literal["created", "invalid", "conflict", "forbidden"]
    user: UserCreated | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class BulkResult(BaseModel):
    created: int
    failed: int
    results: list[BulkRowResult]


class RoleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: RoleKey
    name: Name
    description: Description | None = None
    permissions: list[Permission] = Field(min_length=1, max_length=64)


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description | None = None
    permissions: list[Permission] = Field(min_length=1, max_length=64)


class RoleOut(BaseModel):
    key: str
    name: str
    description: str | None
    permissions: list[str]
    builtin: bool
    inherited: bool = Field(description="Defined by an ancestor tenant: read-only here.")
    tenant: str | None = Field(description="Code of the defining tenant when it is visible.")


class GrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal_id: uuid.UUID = Field(description="The user's or API client's id.")
    role: RoleKey


class GrantOut(BaseModel):
    id: uuid.UUID
    principal_id: uuid.UUID
    principal_kind: str
    principal_name: str
    role: str
    tenant: str = Field(description="The node the grant applies to (and its subtree).")
    granted_by: str | None
    created_at: datetime
