"""eForm tables: forms, their numbered versions, and the submissions made with them.

A form belongs to the tenant that defines it and is *inherited*: every descendant can read
it and submit with it (see :mod:`app.tenancy.scope`). A descendant that defines a form with
the same key publishes a *variant* of the nearest ancestor's form; ``base_tenant_id`` and
``base_version`` record which parent version the variant was last checked against.

Versions are numbered per form. A version is a ``draft`` (editable, at most one per form),
``published`` (immutable: database triggers refuse any change to its definition) or
``deprecated`` (still readable, never used for new submissions).

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
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
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


class VersionStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    DEPRECATED = "deprecated"


class SubmissionStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class Form(TenantOwned, Timestamped, Base):
    __tablename__ = "forms"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        UniqueConstraint("tenant_id", "key"),
        Index("ix_forms_key", "key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64))
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    base_tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    base_version: Mapped[int | None] = mapped_column(Integer)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FormVersion(TenantOwned, Timestamped, Base):
    __tablename__ = "form_versions"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "form_id"], ["forms.tenant_id", "forms.id"]),
        CheckConstraint("status IN ('draft', 'published', 'deprecated')", name="status"),
        CheckConstraint("number >= 1", name="number"),
        Index("uq_form_versions_one_draft", "tenant_id", "form_id", unique=True,
              sqlite_where=text("status = 'draft'"),
              postgresql_where=text("status = 'draft'")),
    )

    form_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.DRAFT.value)
    definition: Mapped[dict[str, Any]] = mapped_column()
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(128))
    deprecated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
