from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.core.validation import Name

ClientName = Name


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ClientName
    roles: list[str] = Field(min_length=1, max_length=16, examples=[["tenant_admin"]])


class ClientOut(BaseModel):
    client_id: str
    name: str
    tenant: str
    roles: list[str]
    status: str
    created_at: datetime


class ClientCreated(ClientOut):
    client_secret: str | None = Field(
        description="Shown once, at creation. Store it now: only its hash is kept."
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int
