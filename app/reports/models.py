"""Saved report definitions.

A report belongs to the tenant that saves it and is *not* inherited: a saved report is an
agency's own working tool, and a unit below that wants the same report saves its own copy (its
run then counts its own subtree with the form as it sees it). Like any tenant-owned row it is
readable from above by whoever holds a grant there.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, Timestamped, UTCDateTime, new_id, utcnow


class Report(TenantOwned, Timestamped, Base):
    __tablename__ = "reports"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        UniqueConstraint("tenant_id", "key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64))
    form_key: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
