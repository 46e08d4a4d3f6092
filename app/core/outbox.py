"""The transactional outbox: domain events written in the same transaction as the change.

A change and its event commit together or not at all; the worker delivers events afterwards,
at least once, with ``id`` as the receiver's dedupe key. ``aggregate_seq`` orders the events
of one aggregate (a case's revision), so delivery can preserve order per case.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Uuid
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, UTCDateTime, new_id, utcnow


class OutboxEvent(TenantOwned, Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        Index("ix_outbox_events_created", "created_at"),
        Index("ix_outbox_events_aggregate", "aggregate_id", "aggregate_seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    topic: Mapped[str] = mapped_column(String(64))
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    aggregate_seq: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def emit(session: AsyncSession, *, tenant_id: uuid.UUID, topic: str, aggregate_type: str,
         aggregate_id: uuid.UUID, aggregate_seq: int, payload: dict[str, Any],
         at: datetime | None = None) -> OutboxEvent:
    """Add an event to the session's transaction (flushed with the change it describes)."""
    event = OutboxEvent(tenant_id=tenant_id, id=uuid.uuid4(), topic=topic,
                        aggregate_type=aggregate_type, aggregate_id=aggregate_id,
                        aggregate_seq=aggregate_seq, payload=payload,
                        created_at=at or utcnow())
    session.add(event)
    return event
