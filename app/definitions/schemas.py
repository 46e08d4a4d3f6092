"""Response bodies shared by every versioned definition (forms, workflows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KEY_PATTERN = r"^[a-z][a-z0-9-]{1,63}$"
VersionNumber = Annotated[int, Field(ge=1, le=2_147_483_647)]


# A tenant above the caller's own grants is not named: ``tenant`` is then null.
class ParentOut(BaseModel):
    tenant: str | None
    version: int


class DefinitionOut(BaseModel):
    key: str
    tenant: str | None
    inherited: bool = Field(description="Defined by an ancestor of the tenant in the path.")
    status: Literal["draft", "published", "deprecated"] = Field(
        description="Of the current version; 'draft' while nothing is published.")
    latest_version: int | None
    draft_version: int | None = Field(description="Only for the tenant's own definitions.")
    needs_review: bool
    review_reason: str | None
    parent: ParentOut | None = Field(description="For a variant: the ancestor's version it was "
                                     "last checked against.")
    created_at: datetime
    updated_at: datetime
    definition: dict[str, Any] | None = Field(
        default=None, description="The current version's, or the draft's before the first "
        "publication; omitted in lists.")


class VersionOut(BaseModel):
    key: str
    number: int
    status: Literal["draft", "published", "deprecated"]
    digest: str
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    published_at: datetime | None
    published_by: str | None
    deprecated_at: datetime | None
    definition: dict[str, Any] | None = None


class PublishOut(VersionOut):
    variants_flagged: int = Field(description="Variants below now flagged for review.")


class VersionDiffBase(BaseModel):
    """What every diff says; each kind adds its own summary (by field, by state and action)."""

    model_config = ConfigDict(populate_by_name=True)

    from_version: int = Field(alias="from")
    to_version: int = Field(alias="to")
    same: bool
    patch: list[dict[str, Any]] = Field(description="RFC 6902 JSON Patch from one to the other.")
