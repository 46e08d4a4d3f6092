"""Columns every versioned definition shares (eForms, workflows).

A definition belongs to the tenant that defines it and is inherited below it. Versions are
numbered per definition: a ``draft`` (editable, at most one), ``published`` (immutable;
database triggers refuse any change to its content) or ``deprecated`` (still readable, never
used for new work). A descendant that defines the same key publishes a *variant*;
``base_tenant_id`` and ``base_version`` record which parent version it was last checked against.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TenantOwned, Timestamped, UTCDateTime, new_id, utcnow


class VersionStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    DEPRECATED = "deprecated"


class DefinitionHead(TenantOwned, Timestamped):
    """The definition itself: its key, its newest published number and its variant state."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64))
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    base_tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    base_version: Mapped[int | None] = mapped_column(Integer)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DefinitionVersion(TenantOwned, Timestamped):
    """One numbered version of a definition. Subclasses add the column naming their head."""

    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.DRAFT.value)
    definition: Mapped[dict[str, Any]] = mapped_column()
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(128))
    deprecated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
