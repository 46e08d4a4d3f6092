"""Working calendars stored per tenant, and the calendar in effect at a tenant.

Each tenant may declare a :class:`~app.workflows.calendar.CalendarSpec` (weekend, public
holidays, make-up working days). The calendar in effect at a tenant merges its lineage's
declarations root first, the nearest declaration of a date winning; a ministry declares the
national holidays once and every unit below inherits them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import advisory_xact_lock, utcnow
from app.core.problems import Problem, not_found
from app.identity.callers import Caller
from app.identity.principals import path_ids
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage
from app.workflows.calendar import (
    DEFAULT_WEEKEND,
    CalendarSpec,
    WorkingCalendar,
    effective_calendar,
)
from app.workflows.calendar_schemas import CalendarIn, DatedName
from app.workflows.models import TenantCalendar


async def _lineage_rows(session: AsyncSession, tenant: Tenant) -> list[TenantCalendar]:
    """The calendars declared on the tenant's lineage, root first."""
    lineage = path_ids(tenant.path)
    rows = (await session.execute(select(TenantCalendar).where(
        TenantCalendar.tenant_id.in_(lineage)))).scalars().all()
    by_tenant = {row.tenant_id: row for row in rows}
    return [by_tenant[t] for t in lineage if t in by_tenant]


async def lineage_specs(session: AsyncSession, tenant: Tenant) -> list[CalendarSpec]:
    """The calendars declared on the tenant's lineage, root first."""
    return [CalendarSpec.from_json(row.document) for row in await _lineage_rows(session, tenant)]


async def effective_at(session: AsyncSession, tenant: Tenant) -> WorkingCalendar:
    return effective_calendar(await lineage_specs(session, tenant))


# ---- the merged view ---------------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveDay:
    day: date
    name: str
    own: bool
    """Declared by the tenant itself rather than by a unit above it."""


@dataclass(frozen=True)
class Effective:
    """:func:`~app.workflows.calendar.effective_calendar`'s result, with names and sources."""

    weekend: frozenset[int]
    holidays: tuple[EffectiveDay, ...]
    working_days: tuple[EffectiveDay, ...]

    def in_year(self, year: int) -> Effective:
        return replace(self, holidays=tuple(d for d in self.holidays if d.day.year == year),
                       working_days=tuple(d for d in self.working_days if d.day.year == year))


def layer(chain: Sequence[tuple[CalendarSpec, bool]]) -> Effective:
    """Merge ``(spec, is_own)`` pairs root first, as ``effective_calendar`` does."""
    weekend = DEFAULT_WEEKEND
    decided: dict[date, tuple[bool, EffectiveDay]] = {}
    for spec, own in chain:
        if spec.weekend is not None:
            weekend = spec.weekend
        for day, name in spec.holidays.items():
            decided[day] = (True, EffectiveDay(day, name, own))
        for day, name in spec.working_days.items():
            decided[day] = (False, EffectiveDay(day, name, own))
    ordered = [decided[day] for day in sorted(decided)]
    return Effective(weekend=weekend,
                     holidays=tuple(d for holiday, d in ordered if holiday),
                     working_days=tuple(d for holiday, d in ordered if not holiday))


@dataclass(frozen=True)
class CalendarView:
    tenant: Tenant
    own: TenantCalendar | None
    effective: Effective

    @property
    def own_spec(self) -> CalendarSpec | None:
        return None if self.own is None else CalendarSpec.from_json(self.own.document)

    @property
    def updated_at(self) -> datetime | None:
        return None if self.own is None else self.own.updated_at


async def view(session: AsyncSession, tenant: Tenant, *, year: int | None = None) -> CalendarView:
    """The tenant's own declaration and the calendar in effect there (of one year, if given)."""
    rows = await _lineage_rows(session, tenant)
    own = rows[-1] if rows and rows[-1].tenant_id == tenant.id else None
    effective = layer([(CalendarSpec.from_json(row.document), row.tenant_id == tenant.id)
                       for row in rows])
    return CalendarView(tenant, own, effective if year is None else effective.in_year(year))


# ---- changing a tenant's own declaration -------------------------------------------------


def spec_of(body: CalendarIn) -> CalendarSpec:
    """The body as a spec, or a 422 pointing at each date listed twice or in both lists."""
    errors: list[dict[str, Any]] = []
    seen: dict[date, str] = {}

    def check(kind: str, entries: list[DatedName]) -> dict[date, str]:
        named: dict[date, str] = {}
        for index, entry in enumerate(entries):
            earlier = seen.get(entry.date)
            if earlier is not None:
                detail = (f"{entry.date.isoformat()} is listed more than once" if earlier == kind
                          else f"{entry.date.isoformat()} cannot be both a holiday and a "
                          "working day")
                errors.append({"pointer": f"/{kind}/{index}/date", "detail": detail})
                continue
            seen[entry.date] = kind
            named[entry.date] = entry.name
        return named

    holidays = check("holidays", body.holidays)
    working_days = check("working_days", body.working_days)
    if errors:
        raise Problem(422, "validation-failed", "Dữ liệu không hợp lệ", "Invalid request",
                      detail="The calendar lists some dates more than once; see errors.",
                      errors=errors)
    weekend = None if body.weekend is None else frozenset(body.weekend)
    return CalendarSpec(weekend=weekend, holidays=holidays, working_days=working_days)


def _lock_key(tenant_id: uuid.UUID) -> int:
    digest = hashlib.blake2b(b"tenant-calendar:" + tenant_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def _own_for_update(session: AsyncSession, tenant: Tenant) -> TenantCalendar | None:
    """The tenant's own row, with concurrent writers of it serialised until commit."""
    await lock_active_lineage(session, tenant)
    await advisory_xact_lock(session, _lock_key(tenant.id))
    return (await session.execute(select(TenantCalendar).where(
        TenantCalendar.tenant_id == tenant.id).with_for_update())).scalar_one_or_none()


async def replace_own(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                      spec: CalendarSpec) -> None:
    """Replace (never merge) the tenant's own declaration."""
    row = await _own_for_update(session, tenant)
    before = None if row is None else dict(row.document)
    document, now = spec.to_json(), utcnow()
    if row is None:
        session.add(TenantCalendar(tenant_id=tenant.id, document=document, created_at=now,
                                   updated_at=now))
    else:
        row.document, row.updated_at = document, now
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="calendar.replace", resource_type="calendar",
                       resource_id=str(tenant.id), before=before, after=document)


async def delete_own(session: AsyncSession, *, caller: Caller, tenant: Tenant) -> None:
    """Drop the tenant's own declaration: it inherits its lineage's calendar again."""
    row = await _own_for_update(session, tenant)
    if row is None:
        raise not_found("calendar", tenant.code)
    before = dict(row.document)
    await session.delete(row)
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="calendar.delete", resource_type="calendar",
                       resource_id=str(tenant.id), before=before)
