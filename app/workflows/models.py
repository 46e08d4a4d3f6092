"""Workflow tables: workflows and their numbered versions (versioned definitions, see
:mod:`app.definitions.models`).

``form_key`` on a workflow is the form its current version binds to, kept on publication so
that finding the workflow a new submission opens a case of is one indexed lookup.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

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

from app.core.db import Base
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
