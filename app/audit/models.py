from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKeyConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, utcnow


class AuditRecord(TenantOwned, Base):
    """One change, linked to the previous record of the same tenant by ``prev_hash``.

    ``hash`` covers every other column, so editing a row, deleting one or reordering them
    breaks the chain at that point. The service role may only SELECT and INSERT here.
    """

    __tablename__ = "audit_records"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def tenant_lock_key(tenant_id: uuid.UUID) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock`` derived from the tenant id."""
    return int.from_bytes(tenant_id.bytes[:8], "big", signed=True)
