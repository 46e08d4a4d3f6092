"""Request and response bodies of the case and inbox endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SlaStatus = Literal["on_time", "due_soon", "overdue", "paused"]


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: dict[str, Any] = Field(default_factory=dict, description="Values for the action's "
                                   "fields; they join the case data.")
    comment: str | None = Field(default=None, max_length=5000)
    seat: str | None = Field(default=None, max_length=64, description="In an approval state, "
                             "the seat (role) to vote in when you hold several.")


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: uuid.UUID = Field(description="The user or client to give the case to.")


class Deadline(BaseModel):
    due_at: datetime | None
    due_soon_at: datetime | None
    status: SlaStatus | None


class Sla(BaseModel):
    case: Deadline | None
    state: Deadline | None
    status: SlaStatus | None = Field(description="The worse of the two.")


class StateOut(BaseModel):
    name: str
    type: str
    title: dict[str, str]


class PinnedWorkflow(BaseModel):
    key: str
    tenant: str | None
    version: int


class ActionFieldOut(BaseModel):
    title: dict[str, str]
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    required: bool


class AvailableAction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    title: dict[str, str]
    to: str
    vote: Literal["approve", "reject"] | None
    fields: dict[str, ActionFieldOut]
    comment: Literal["required", "optional", "none"]
    signature_required: bool
    signer: str | None


class VoteOut(BaseModel):
    seat: int
    role: str
    actor: str
    vote: Literal["approve", "reject"]


class CaseOut(BaseModel):
    id: uuid.UUID
    tenant: str
    submission_id: uuid.UUID
    form: str
    workflow: PinnedWorkflow
    state: StateOut
    status: Literal["open", "closed"]
    outcome: str | None
    data: dict[str, Any]
    masked_fields: list[str]
    assignee: str | None
    revision: int
    etag: str = Field(description="Send it in If-Match to act on the case.")
    sla: Sla
    votes: list[VoteOut]
    actions: list[AvailableAction] = Field(description="What the caller may do now.")
    created_at: datetime
    updated_at: datetime
    state_entered_at: datetime
    closed_at: datetime | None


class CaseSummary(BaseModel):
    id: uuid.UUID
    tenant: str
    form: str
    workflow: str
    state: str
    status: Literal["open", "closed"]
    outcome: str | None
    assignee: str | None
    sla: SlaStatus | None
    created_at: datetime
    updated_at: datetime


class HistoryOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    seq: int
    kind: str
    at: datetime
    actor: str
    action: str | None
    from_state: str | None = Field(serialization_alias="from")
    to_state: str | None = Field(serialization_alias="to")
    comment: str | None
    changes: dict[str, Any] | None
    detail: dict[str, Any] | None
    signature_ref: str | None


class TaskOut(BaseModel):
    case: uuid.UUID
    tenant: str
    form: str
    workflow: str
    state: StateOut
    assignee: str | None
    claimed_by_me: bool
    escalated: bool
    sla: SlaStatus | None
    due_at: datetime | None
    actions: list[str] = Field(description="The actions the caller may take now.")
    updated_at: datetime


StateName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class MigrateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: int = Field(ge=1, le=2_147_483_647, description="A published version.")
    from_version: int | None = Field(default=None, ge=1, le=2_147_483_647,
                                     description="Only cases on this version (default: all "
                                     "older and newer ones).")
    states: dict[StateName, StateName] = Field(
        default_factory=dict, max_length=100, description="Old state → new state; a state not "
        "named keeps its name.")
    dry_run: bool = Field(default=True, description="List what would move and what cannot, "
                          "and change nothing (the default).")
    limit: int = Field(default=1000, ge=1, le=10_000, description="Cases handled per call, "
                       "oldest first.")


class MovedCase(BaseModel):
    case: uuid.UUID
    tenant: str | None
    version: int
    state: str
    to_state: str


class BlockedCase(BaseModel):
    case: uuid.UUID
    tenant: str | None
    version: int
    state: str
    code: str
    detail: str
    detail_vi: str


class MigrateOut(BaseModel):
    to_version: int
    dry_run: bool
    moved: list[MovedCase] = Field(description="Moved (or, in a dry run, would move).")
    cannot_move: list[BlockedCase]
    remaining: int = Field(description="Matching cases beyond the limit; call again.")


class DelegationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delegate: uuid.UUID = Field(description="The colleague (user or client) who stands in.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime = Field(description="At most a year after starts_at.")
    reason: str | None = Field(default=None, max_length=500)


class DelegationOut(BaseModel):
    id: uuid.UUID
    delegator: uuid.UUID
    delegate: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    ended_at: datetime | None
    active: bool
    created_at: datetime
