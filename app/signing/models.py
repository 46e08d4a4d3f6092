"""Signing tables.

``signing_configs``: a tenant's signing set-up (provider, its configuration with secrets, the
trust anchors, revocation and signer-matching rules), inherited by the units below that have
none of their own. ``case_signatures``: one row per signature asked for at a workflow step,
from the request (the signed document and its digest) to the evidence (the CMS, the chain,
the verification verdict, the provider's transaction id).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONDocument, TenantOwned, Timestamped, UTCDateTime, new_id, utcnow


class SigningConfig(TenantOwned, Timestamped, Base):
    __tablename__ = "signing_configs"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    provider: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column()
    policy: Mapped[dict[str, Any]] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseSignature(TenantOwned, Base):
    __tablename__ = "case_signatures"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "case_id"], ["cases.tenant_id", "cases.id"],
                             ondelete="CASCADE"),
        CheckConstraint("status IN ('pending', 'completed', 'failed', 'expired')",
                        name="status"),
        Index("ix_case_signatures_case", "tenant_id", "case_id", "requested_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    config_tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    transaction_id: Mapped[str | None] = mapped_column(String(255))
    case_revision: Mapped[int] = mapped_column(Integer)
    request: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    document: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    digest: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_by_id: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    instructions: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    chain: Mapped[list[str] | None] = mapped_column(JSONDocument)
    failure: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed PDF (PAdES)
