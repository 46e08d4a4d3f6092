"""Case tables.

A case belongs to the tenant where its submission was made and pins the workflow version it
started on (``workflow_tenant_id``, ``workflow_id``, ``workflow_version``), which may belong to
an ancestor. ``revision`` is the case's ETag: every change bumps it, and a change is applied
only if the revision it read is still the current one.

``case_history`` is append-only: one numbered entry per thing that happened. ``case_tasks``
says who may act on an open case now (a role, held at or above a tenant path), so the inbox
is an indexed range scan per grant instead of a run of the engine per case. ``case_timers``
are the SLA deadlines the worker fires, each exactly once.
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
    PathString,
    TenantOwned,
    Timestamped,
    UTCDateTime,
    new_id,
    utcnow,
)


class Case(TenantOwned, Timestamped, Base):
    __tablename__ = "cases"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        ForeignKeyConstraint(["tenant_id", "submission_id"],
                             ["submissions.tenant_id", "submissions.id"]),
        ForeignKeyConstraint(
            ["workflow_tenant_id", "workflow_id", "workflow_version"],
            ["workflow_versions.tenant_id", "workflow_versions.workflow_id",
             "workflow_versions.number"]),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        Index("uq_cases_submission", "tenant_id", "submission_id", unique=True),
        Index("ix_cases_listing", "tenant_id", "status", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    form_key: Mapped[str] = mapped_column(String(64))
    workflow_key: Mapped[str] = mapped_column(String(64))
    workflow_tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    workflow_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    workflow_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    outcome: Mapped[str | None] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column()
    # Engine state beyond the state name: votes in an approval state, escalations.
    votes: Mapped[list[Any]] = mapped_column(JSONDocument, default=list)
    extra: Mapped[list[Any]] = mapped_column(JSONDocument, default=list)
    assignee: Mapped[str | None] = mapped_column(String(64))
    applicant: Mapped[str] = mapped_column(String(64))
    # Where each jurisdiction of the workflow lies for this case: {"case": path, "parent":
    # path, "province": path, ...} (a missing key: the case's tenant has no such ancestor).
    routes: Mapped[dict[str, Any]] = mapped_column()
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state_entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The SLA clock: closed pauses as [start, end] ISO pairs, and the open one if waiting.
    pauses: Mapped[list[Any]] = mapped_column(JSONDocument, default=list)
    paused_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Deadlines as computed on the last change (null: no SLA, or the clock is paused).
    case_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    case_due_soon_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state_due_soon_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseHistory(TenantOwned, Base):
    __tablename__ = "case_history"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "case_id"], ["cases.tenant_id", "cases.id"],
                             ondelete="CASCADE"),
        CheckConstraint("kind IN ('opened', 'action', 'vote', 'claim', 'release', 'assign', "
                        "'breach', 'migrate')", name="kind"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(160))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any] | None] = mapped_column()
    detail: Mapped[dict[str, Any] | None] = mapped_column()
    signature_ref: Mapped[str | None] = mapped_column(String(128))


class CaseTask(TenantOwned, Base):
    """Holders of ``role`` through a grant at ``at_path`` or above may act on the case."""

    __tablename__ = "case_tasks"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "case_id"], ["cases.tenant_id", "cases.id"],
                             ondelete="CASCADE"),
        Index("ix_case_tasks_inbox", "role", "at_path"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    at_path: Mapped[str] = mapped_column(PathString, primary_key=True)
    # Escalated after an SLA breach: shown even when someone has claimed the case.
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)


class CaseTimer(TenantOwned, Base):
    """An SLA deadline of a case (``kind`` 'case') or of one stay in a state ('state')."""

    __tablename__ = "case_timers"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "case_id"], ["cases.tenant_id", "cases.id"],
                             ondelete="CASCADE"),
        CheckConstraint("kind IN ('case', 'state')", name="kind"),
        Index("ix_case_timers_due", "due_at", sqlite_where=text("fired_at IS NULL"),
              postgresql_where=text("fired_at IS NULL")),
        Index("ix_case_timers_case", "tenant_id", "case_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delegation(TenantOwned, Timestamped, Base):
    """While an official is absent, a colleague acts on cases in their stead: the delegate
    may take what the delegator's roles allow and the cases the delegator claimed. The row
    lives in the delegator's home tenant; the delegate must be someone the delegator can see.
    """

    __tablename__ = "case_delegations"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "delegator"],
                             ["principals.tenant_id", "principals.id"]),
        CheckConstraint("ends_at > starts_at", name="period"),
        Index("ix_case_delegations_delegate", "delegate", "ends_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    delegator: Mapped[uuid.UUID] = mapped_column(Uuid)
    delegate: Mapped[uuid.UUID] = mapped_column(Uuid)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(500))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
