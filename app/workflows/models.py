"""Workflow tables: workflows and their numbered versions (versioned definitions, see
:mod:`app.definitions.models`).

``form_key`` on a workflow is the form its current version binds to, kept on publication so
that finding the workflow a new submission opens a case of is one indexed lookup.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, Timestamped, UTCDateTime, utcnow
from app.definitions.models import DefinitionHead, DefinitionVersion


class Workflow(DefinitionHead, Base):
    __tablename__ = "workflows"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        UniqueConstraint("tenant_id", "key"),
        Index("ix_workflows_key", "key"),
        Index("ix_workflows_form_key", "form_key"),
    )

    form_key: Mapped[str | None] = mapped_column(String(64))


class WorkflowVersion(DefinitionVersion, Base):
    __tablename__ = "workflow_versions"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "workflow_id", "number"),
        ForeignKeyConstraint(["tenant_id", "workflow_id"],
                             ["workflows.tenant_id", "workflows.id"]),
        CheckConstraint("status IN ('draft', 'published', 'deprecated')", name="status"),
        CheckConstraint("number >= 1", name="number"),
        Index("uq_workflow_versions_one_draft", "tenant_id", "workflow_id", unique=True,
              sqlite_where=text("status = 'draft'"),
              postgresql_where=text("status = 'draft'")),
    )

    workflow_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class TenantCalendar(TenantOwned, Timestamped, Base):
    """A tenant's working calendar (:class:`app.workflows.calendar.CalendarSpec` as JSON):
    its weekend, public holidays and make-up working days. Units below inherit it; the
    nearest unit that mentions a date decides it."""

    __tablename__ = "tenant_calendars"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    document: Mapped[dict[str, Any]] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
