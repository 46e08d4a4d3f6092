"""Request and response bodies of the data-service and gateway-trust endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DataServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,63}$", description="The service code; each "
                      "publication adds a version (name.v1, name.v2, ...).")
    title: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=4000)
    source: Literal["cases", "submissions"]
    form: str = Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")
    fields: list[str] = Field(min_length=1, max_length=200, description="The exposed fields.")
    filters: list[str] = Field(default_factory=list, max_length=20,
                               description="Exposed fields a consumer may filter on (equal).")
    consumers: list[str] = Field(min_length=1, max_length=100, description="X-Road "
                                 "subsystems allowed to call: INSTANCE/CLASS/MEMBER/SUBSYSTEM.")
    personal_data: Literal["none", "basic", "sensitive"] = "none"


class DataServiceOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    version: int
    title: str
    description: str | None
    source: str
    form: str
    fields: list[str]
    filters: list[str]
    consumers: list[str]
    personal_data: str
    created_at: datetime


class GatewayTrustIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1, max_length=500, description="The gateway's tokens' iss.")
    audience: str = Field(min_length=1, max_length=500, description="This unit, as the "
                          "gateway's tokens name it (aud).")
    keys: dict[str, Any] = Field(description="The gateway's public keys (a JWKS).")


class GatewayTrustOut(BaseModel):
    tenant: str | None
    issuer: str
    audience: str
    keys: dict[str, Any]
    updated_at: datetime


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    form: str = Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")
    field: str = Field(min_length=1, max_length=64, description="The field whose value is the "
                       "lookup's key (e.g. the citizen-ID number).")
    settings: dict[str, Any] = Field(description="url (with {value}) or xroad + parameter; "
                                     "fills {form field: JSON Pointer into the answer}; "
                                     "timeout_seconds, cache_seconds, failures_to_open, "
                                     "open_seconds.")


class LookupOut(LookupIn):
    name: str
    updated_at: datetime


class PrefillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, max_length=64)
    value: str = Field(min_length=1, max_length=200)


class PrefillOut(BaseModel):
    available: bool = Field(description="False: the lookup cannot answer now; fill in by hand.")
    found: bool
    values: dict[str, Any]
    source: str = Field(description="live, cache, or circuit-open.")
    reason: str | None = None
    reason_vi: str | None = None
