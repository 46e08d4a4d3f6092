"""Request and response bodies of the report endpoints.

A report definition travels as-is (``reports/report.schema.json``) and is checked by
:mod:`app.reports.definitions`, so its errors point into the definition itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportOut(BaseModel):
    key: str
    form: str
    title: dict[str, str]
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    definition: dict[str, Any] | None = Field(default=None, description="Omitted in lists.")


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rollup: Literal["none", "children"] | None = Field(
        default=None, description="Instead of the saved definition's rollup.")


class ResultOut(BaseModel):
    columns: list[str] = Field(description="The group_by entries, then one per aggregate: "
                               "'count', 'sum(von_kinh_doanh)', ...")
    rows: list[list[Any]] = Field(description="Ordered by the group columns, nulls last.")
    generated_at: datetime
    tenant: str = Field(description="The tenant the report ran at (over its whole subtree).")
    report: str | None = Field(description="The saved report's key; null for a preview.")
    rollup: str = Field(description="'none' or 'children'.")
    min_group_size: int = Field(description="Rows counting fewer submissions were left out.")
    truncated: bool = Field(description="More rows matched than the definition's limit.")
