"""Request and response bodies of the eForm and submission endpoints.

A form definition travels as-is (``forms/form.schema.json``) and is checked by
:func:`app.forms.definitions.check`, so its errors point into the definition itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.definitions.schemas import KEY_PATTERN, DefinitionOut, VersionDiffBase, VersionNumber

__all__ = ["VersionNumber"]

FORM_KEY_PATTERN = KEY_PATTERN
FormKey = Annotated[str, Field(pattern=FORM_KEY_PATTERN, description="The form's key")]


class FieldErrorOut(BaseModel):
    pointer: str
    detail: str
    detail_vi: str
    keyword: str


class FormOut(DefinitionOut):
    """A form as seen from the tenant in the path."""


class FieldChanges(BaseModel):
    added: list[str]
    removed: list[str]
    changed: list[str]
    now_required: list[str]
    no_longer_required: list[str]


class VersionDiff(VersionDiffBase):
    fields: FieldChanges


class ValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Any
    version: VersionNumber | None = Field(
        default=None, description="Default: the draft, else the current version.")
    definition: dict[str, Any] | None = Field(
        default=None, description="An unsaved definition to check the data against instead "
        "of a stored version (the form builder's live preview). It is checked as a draft "
        "would be (422 with pointers under /definition) and never stored. Not with version.")


class ValidateOut(BaseModel):
    valid: bool
    version: int | None = Field(description="The version checked against; null for an "
                                "unsaved definition.")
    errors: list[FieldErrorOut]


class SubmissionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    form: FormKey
    version: VersionNumber | None = Field(
        default=None, description="Default: the current version of the nearest form.")
    data: Any
    status: Literal["draft", "submitted"] = "submitted"


class SubmissionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Any = None
    status: Literal["submitted"] | None = Field(
        default=None, description="'submitted' validates the draft in full and submits it.")


class PinnedForm(BaseModel):
    key: str
    tenant: str | None
    version: int


class SubmissionOut(BaseModel):
    id: uuid.UUID
    tenant: str
    form: PinnedForm
    status: Literal["draft", "submitted"]
    data: dict[str, Any]
    masked_fields: list[str] = Field(
        description="Personal-data fields replaced by '***': the caller lacks the permission.")
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    case: uuid.UUID | None = Field(default=None, description="The case the submission opened, "
                                   "when its form binds to a workflow (single reads only).")


class AttachmentOut(BaseModel):
    id: uuid.UUID
    field: str
    filename: str
    media_type: str = Field(description="What the content is, whatever its name or the "
                            "declared type said.")
    size: int
    sha256: str
    created_at: datetime
    created_by: str | None
