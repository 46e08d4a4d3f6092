"""Request and response bodies of the delivery and webhook-key endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DeliveryStatus = Literal["pending", "delivered", "dead"]


class DeliveryOut(BaseModel):
    id: uuid.UUID
    tenant: str
    event: uuid.UUID = Field(description="The event id: the webhook-id the receiver sees, the "
                             "same on every attempt.")
    topic: str
    kind: str
    target: str
    case: uuid.UUID
    revision: int = Field(description="The case revision the event came from; with ordinal, "
                          "the order deliveries to one target go out in.")
    ordinal: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried "
                                             "next.")
    last_status: int | None = Field(description="The HTTP status of the last attempt, if any.")
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any] | None = Field(
        default=None, description="The event's data (only when one delivery is read).")


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(
        default=24 * 3600, ge=0, le=7 * 24 * 3600,
        description="How long the keys this one replaces go on signing (0: stop at once).")


class SecretOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    expires_at: datetime | None = Field(description="When the key stops signing (none: while "
                                        "it is the newest).")


class NewSecretOut(SecretOut):
    secret: str = Field(description="The key, shown only now: configure it in the receiver "
                        "(any Standard Webhooks library verifies with it).")


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")
    transport: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,31}$",
                           description="webhook, xroad, token-gateway, or an installed one.")
    target: dict[str, Any] = Field(description="The transport's settings, per its schema.")
    events: list[str] = Field(min_length=1, max_length=50, description="case.opened, "
                              "case.*, *, sharing:<event of a workflow hook>, ...")
    fields: list[str] = Field(default_factory=list, max_length=200,
                              description="Case-data fields sent with each event.")
    personal_data: Literal["none", "basic", "sensitive"] = Field(
        default="none", description="The personal-data fields the receiver may have.")
    active: bool = True


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    name: str
    transport: str
    target: dict[str, Any] = Field(description="Secrets show as ***.")
    events: list[str]
    fields: list[str]
    personal_data: str
    active: bool
    created_at: datetime
    updated_at: datetime


class AttemptOut(BaseModel):
    attempted_at: datetime
    service: str
    message_id: str
    body_sha256: str
    status: int | None
    outcome: str
    error: str | None
    latency_ms: int
    detail: dict[str, Any] | None
