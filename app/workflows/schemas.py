"""Request and response bodies of the workflow endpoints.

A workflow definition travels as-is (``workflows/workflow.schema.json``) and is checked by
:mod:`app.workflows.definitions`, so its errors point into the definition itself.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.definitions.schemas import DefinitionOut, VersionDiffBase, VersionNumber
from app.forms.schemas import FieldErrorOut

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class WorkflowOut(DefinitionOut):
    """A workflow as seen from the tenant in the path."""


class NamedChanges(BaseModel):
    added: list[str]
    removed: list[str]
    changed: list[str]


class WorkflowDiff(VersionDiffBase):
    states: NamedChanges
    actions: NamedChanges


class SimulatedActor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    roles: list[str] = Field(default_factory=list, max_length=20, description="Roles held; "
                             "'applicant' and 'system' act as the applicant and the platform.")
    at: Literal["case", "parent", "province", "ministry"] = Field(
        default="case", description="Where the roles are held relative to the case's tenant; "
        "a higher one covers the lower ones.")


class SimulatedStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(pattern=NAME_PATTERN)
    actor: SimulatedActor
    fields: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = Field(default=None, max_length=5000)
    signed: bool = Field(default=False, description="Pretend the action carries a valid "
                         "digital signature.")
    seat: str | None = Field(default=None, description="In an approval state, the seat (role) "
                             "to vote in.")


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: VersionNumber | None = Field(
        default=None, description="Default: the tenant's own draft, else the current version.")
    data: dict[str, Any] = Field(description="The submission the case starts from; checked "
                                 "against the bound form's current version.")
    steps: list[SimulatedStep] = Field(max_length=500)


class SimulatedTransition(BaseModel):
    action: str
    actor: str
    source: str = Field(serialization_alias="from")
    target: str = Field(serialization_alias="to")
    moved: bool
    vote: Literal["approve", "reject"] | None
    seat: str | None
    changes: dict[str, Any]
    hooks: list[dict[str, Any]]


class Refusal(BaseModel):
    step: int
    status: int
    code: str
    detail: str
    detail_vi: str
    errors: list[FieldErrorOut]


class SimulateOut(BaseModel):
    version: int
    path: list[str] = Field(description="Every state the case was in, one per transition.")
    state: str
    steps: list[SimulatedTransition]
    refused: Refusal | None = Field(description="The step that could not be taken; the "
                                    "simulation stops there.")
    problems: list[FieldErrorOut] = Field(description="What would stop this version from "
                                          "being published here (empty once publishable).")
