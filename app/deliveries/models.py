"""Delivery tables.

A ``delivery`` is one outbox event on its way to one target, written in the same transaction
as the event. The worker sends it at least once: it leases due deliveries, sends them outside
any transaction, and records the answer. Deliveries sharing an ``ordering_key`` (a case) and
a ``target`` go out strictly in ``(aggregate_seq, ordinal)`` order: a delivery is sent only
once every earlier one of its stream has been delivered or given up on (``dead``).

``webhook_secrets`` are the keys webhook bodies are signed with. A tenant signs with its own
keys, or, having none, with those of its nearest ancestor that has some, so a ministry that
declares a hook in a template gives its receiver one key to check, not one per commune.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import (
    Base,
    JSONDocument,
    TenantOwned,
    Timestamped,
    UTCDateTime,
    new_id,
    utcnow,
)

STATUSES = ("pending", "delivered", "dead")


class Delivery(TenantOwned, Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        ForeignKeyConstraint(["tenant_id", "event_id"],
                             ["outbox_events.tenant_id", "outbox_events.id"]),
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
        Index("ix_deliveries_due", "next_attempt_at",
              sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        Index("ix_deliveries_stream", "tenant_id", "ordering_key", "target", "aggregate_seq",
              "ordinal", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        Index("ix_deliveries_listing", "tenant_id", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(16))
    # A subscription's delivery: who it is for (its tenant may be an ancestor's) and the
    # body as it was when the event happened (its fields, filtered for personal data).
    subscription_tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    target: Mapped[str] = mapped_column(String(2000))
    ordering_key: Mapped[uuid.UUID] = mapped_column(Uuid)
    aggregate_seq: Mapped[int] = mapped_column(Integer)
    ordinal: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def stream(self) -> tuple[Any, ...]:
        return (self.tenant_id, self.ordering_key, self.target)


class Subscription(TenantOwned, Timestamped, Base):
    """A unit's standing order: send these events, with these fields, to this service, by
    this transport. It covers the unit and every unit below it."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        Index("uq_subscriptions_name", "tenant_id", "name", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    transport: Mapped[str] = mapped_column(String(32))
    target: Mapped[dict[str, Any]] = mapped_column()
    events: Mapped[list[str]] = mapped_column(JSONDocument)
    fields: Mapped[list[str]] = mapped_column(JSONDocument)
    personal_data: Mapped[str] = mapped_column(String(16), default="none")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryAttempt(TenantOwned, Base):
    """One exchange with a target, for the audit: what was sent (its digest), where, the
    answer, how long it took, and the gateway's message ids."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        Index("ix_delivery_attempts_delivery", "tenant_id", "delivery_id", "attempted_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    service: Mapped[str] = mapped_column(String(2000))
    message_id: Mapped[str] = mapped_column(String(64))
    body_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class WebhookSecret(TenantOwned, Base):
    __tablename__ = "webhook_secrets"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        Index("ix_webhook_secrets_tenant", "tenant_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
