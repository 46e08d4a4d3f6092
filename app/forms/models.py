"""eForm tables: forms, their numbered versions, and the submissions made with them.

A form is a versioned definition (:mod:`app.definitions.models`): it belongs to the tenant
that defines it and is *inherited*, so every descendant can read it and submit with it (see
:mod:`app.tenancy.scope`).

A submission pins the exact version it was made with (``form_tenant_id``, ``form_id``,
``form_version``), which may belong to an ancestor; the composite foreign key keeps the pin
pointing at a version that exists.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    column,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, Timestamped, UTCDateTime, new_id, utcnow
from app.definitions.models import DefinitionHead, DefinitionVersion


class SubmissionStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class Form(DefinitionHead, Base):
    __tablename__ = "forms"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        UniqueConstraint("tenant_id", "key"),
        Index("ix_forms_key", "key"),
    )


class FormVersion(DefinitionVersion, Base):
    __tablename__ = "form_versions"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "form_id", "number"),
        ForeignKeyConstraint(["tenant_id", "form_id"], ["forms.tenant_id", "forms.id"]),
        CheckConstraint("status IN ('draft', 'published', 'deprecated')", name="status"),
        CheckConstraint("number >= 1", name="number"),
        Index("uq_form_versions_one_draft", "tenant_id", "form_id", unique=True,
              sqlite_where=text("status = 'draft'"),
              postgresql_where=text("status = 'draft'")),
    )

    form_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class Submission(TenantOwned, Timestamped, Base):
    """Data submitted with one form version. ``search_text`` holds the normalised words of
    the fields that are not personal data (so a search can never reveal masked values)."""

    __tablename__ = "submissions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        ForeignKeyConstraint(
            ["form_tenant_id", "form_id", "form_version"],
            ["form_versions.tenant_id", "form_versions.form_id", "form_versions.number"],
        ),
        CheckConstraint("status IN ('draft', 'submitted')", name="status"),
        Index("ix_submissions_form_key", "tenant_id", "form_key", "created_at"),
        Index("ix_submissions_search", func.to_tsvector(literal_column("'simple'"),
                                                        column("search_text")),
              postgresql_using="gin").ddl_if(dialect="postgresql"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    form_key: Mapped[str] = mapped_column(String(64))
    form_tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    form_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    form_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column()
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Attachment(TenantOwned, Timestamped, Base):
    """A file uploaded for one field of a draft submission. The row keeps what the content
    really is (sniffed, not the declared type or name), its size and SHA-256; the bytes live
    in the attachment storage under ``storage_key``. Rows go with their submission."""

    __tablename__ = "attachments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "submission_id"],
                             ["submissions.tenant_id", "submissions.id"], ondelete="CASCADE"),
        Index("ix_attachments_submission", "tenant_id", "submission_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    field: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512), unique=True)
    created_by: Mapped[str | None] = mapped_column(String(128))
