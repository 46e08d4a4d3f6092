from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.validation import Name
from app.identity.permissions import Permission

ClientName = Name

CLIENT_ID_PATTERN = r"^ntc_[A-Za-z0-9_-]{1,60}$"
"""The shape of every client id the platform issues (``ntc_`` and URL-safe base64)."""

MIN_RATE_LIMIT = 1
MAX_RATE_LIMIT = 100_000
MAX_OVERLAP_SECONDS = 30 * 24 * 3600
DEFAULT_OVERLAP_SECONDS = 24 * 3600

ClientId = Annotated[str, StringConstraints(pattern=CLIENT_ID_PATTERN)]
Scopes = Annotated[
    list[Permission],
    Field(min_length=1, max_length=len(Permission),
          description="Permissions this client's tokens are limited to, whatever its roles "
          "allow; null for no limit. You must hold each one yourself at this tenant. A change "
          "applies to tokens issued after it.",
          examples=[["tenants:read", "submissions:create"]]),
]
RateLimit = Annotated[
    int,
    Field(ge=MIN_RATE_LIMIT, le=MAX_RATE_LIMIT,
          description="Requests a minute this client may send to each replica; null for the "
          "platform default. Only a platform administrator may set more than the default.",
          examples=[600]),
]


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ClientName
    roles: list[str] = Field(min_length=1, max_length=16, examples=[["tenant_admin"]])
    scopes: Scopes | None = None
    rate_limit_per_minute: RateLimit | None = None


class ClientUpdate(BaseModel):
    """Send only what changes. ``scopes`` and ``rate_limit_per_minute`` accept null (no
    limit / the platform default); ``name`` and ``status`` do not."""

    model_config = ConfigDict(extra="forbid")

    name: ClientName | None = None
    scopes: Scopes | None = None
    rate_limit_per_minute: RateLimit | None = None
    status: Literal["active", "disabled"] | None = Field(
        default=None, description="'disabled' revokes the client: its tokens stop working on "
        "their next request and the token endpoint refuses it.")


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(
        default=DEFAULT_OVERLAP_SECONDS, ge=0, le=MAX_OVERLAP_SECONDS,
        description="How long the old secret keeps working beside the new one (0: it stops "
        "now). A secret already in its overlap window stops now either way.")


class ClientOut(BaseModel):
    client_id: str
    name: str
    tenant: str
    roles: list[str]
    status: str
    scopes: list[str] | None = Field(description="null: no limit beyond the roles.")
    rate_limit_per_minute: int | None = Field(description="null: the platform default.")
    last_used_at: datetime | None = Field(
        description="When the client last obtained an access token. Its last API call was "
        "at most one access-token lifetime after that.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret replaced by the last rotation still works; null "
        "when no old secret works.")
    created_at: datetime


class ClientCreated(ClientOut):
    client_secret: str | None = Field(
        description="Shown once, at creation. Store it now: only its hash is kept."
    )


class SecretRotated(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown once. Store it now: only its hash is kept.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the old secret keeps working; null: it stopped now.")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int
    refresh_token: str | None = Field(
        default=None, description="authorization_code and refresh_token grants only; "
        "rotated on every use.")
    scope: str | None = Field(default=None, description="Present when the token is narrowed "
                              "to a set of permissions.")
