"""Request and response bodies of the working-calendar endpoints.

The request body is :meth:`app.workflows.calendar.CalendarSpec.to_json`'s shape, checked
field by field here; checks across entries (a date listed twice, or both as a holiday and a
working day) are made by :func:`app.workflows.calendars.spec_of` so they can point at the
offending entry.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.core.validation import safe_text

MAX_ENTRIES = 400
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` strings (or dates): no timestamps, datetimes or numbers."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value} is not a calendar date") from exc


def _weekend(days: list[int]) -> list[int]:
    if len(set(days)) != len(days):
        raise ValueError("lists a weekday more than once")
    if len(days) == 7:
        raise ValueError("a week needs at least one working weekday")
    return sorted(days)


CalendarDate = Annotated[dt.date, BeforeValidator(_iso_date)]
DayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(safe_text),
]
IsoWeekday = Annotated[int, Field(strict=True, ge=1, le=7)]
Weekend = Annotated[list[IsoWeekday], Field(max_length=7), AfterValidator(_weekend)]


class DatedName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: CalendarDate = Field(examples=["2026-09-02"])
    name: DayName = Field(examples=["Quốc khánh"])


class CalendarIn(BaseModel):
    """A tenant's own declaration; whatever it leaves out is inherited from the units above."""

    model_config = ConfigDict(extra="forbid")

    weekend: Weekend | None = Field(
        default=None, examples=[[6, 7]],
        description="ISO weekdays (1 Monday .. 7 Sunday) off work; null or absent: inherited.")
    holidays: list[DatedName] = Field(default_factory=list, max_length=MAX_ENTRIES,
                                      description="Public holidays.")
    working_days: list[DatedName] = Field(
        default_factory=list, max_length=MAX_ENTRIES,
        description="Make-up working days; listing an inherited holiday here cancels it.")


class DatedNameOut(BaseModel):
    date: dt.date
    name: str


class OwnCalendarOut(BaseModel):
    weekend: list[int] | None = Field(description="null: inherited.")
    holidays: list[DatedNameOut]
    working_days: list[DatedNameOut]


class EffectiveDayOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    date: dt.date
    name: str
    source: Literal["own", "inherited"] = Field(
        alias="from", description="Declared by this tenant or by a unit above it.")


class EffectiveOut(BaseModel):
    weekend: list[int] = Field(description="From the nearest declaration; Saturday and Sunday "
                               "if none declares one.")
    holidays: list[EffectiveDayOut]
    working_days: list[EffectiveDayOut]


class CalendarOut(BaseModel):
    tenant: str
    own: OwnCalendarOut | None = Field(description="null: the tenant declares nothing and "
                                       "inherits everything.")
    effective: EffectiveOut = Field(description="The calendar in effect here: the lineage's "
                                    "declarations merged, the nearest one deciding each date.")
    updated_at: dt.datetime | None = Field(description="When the own declaration last changed.")
