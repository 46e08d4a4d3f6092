"""A tenant's working calendar under ``/api/v1/tenants/{tenant}/calendar``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.identity.auth import ScopedSession
from app.identity.dependencies import Access, needs
from app.identity.permissions import Permission
from app.workflows import calendars
from app.workflows.calendar import CalendarSpec
from app.workflows.calendar_schemas import (
    CalendarIn,
    CalendarOut,
    DatedNameOut,
    EffectiveDayOut,
    EffectiveOut,
    OwnCalendarOut,
)

router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["workflows"])

TenantsRead = Annotated[Access, needs(Permission.TENANTS_READ)]
TenantsWrite = Annotated[Access, needs(Permission.TENANTS_WRITE)]
Year = Annotated[int | None, Query(ge=1, le=9999, description="Only this year's dates in "
                                   "the effective lists (default: every year).")]


def _own_out(spec: CalendarSpec) -> OwnCalendarOut:
    return OwnCalendarOut(
        weekend=None if spec.weekend is None else sorted(spec.weekend),
        holidays=[DatedNameOut(date=d, name=spec.holidays[d]) for d in sorted(spec.holidays)],
        working_days=[DatedNameOut(date=d, name=spec.working_days[d])
                      for d in sorted(spec.working_days)])


def _days_out(days: tuple[calendars.EffectiveDay, ...]) -> list[EffectiveDayOut]:
    return [EffectiveDayOut(date=d.day, name=d.name, source="own" if d.own else "inherited")
            for d in days]


def _calendar_out(view: calendars.CalendarView) -> CalendarOut:
    spec, effective = view.own_spec, view.effective
    return CalendarOut(
        tenant=view.tenant.code, own=None if spec is None else _own_out(spec),
        effective=EffectiveOut(weekend=sorted(effective.weekend),
                               holidays=_days_out(effective.holidays),
                               working_days=_days_out(effective.working_days)),
        updated_at=view.updated_at)


@router.get("/calendar", response_model=CalendarOut,
            summary="The tenant's own working calendar and the one in effect here")
async def read_calendar(access: TenantsRead, session: ScopedSession,
                        year: Year = None) -> CalendarOut:
    return _calendar_out(await calendars.view(session, access.tenant, year=year))


@router.put("/calendar", response_model=CalendarOut,
            summary="Replace the tenant's own calendar (units below inherit it)")
async def replace_calendar(access: TenantsWrite, body: CalendarIn,
                           session: ScopedSession) -> CalendarOut:
    await calendars.replace_own(session, caller=access.principal, tenant=access.tenant,
                                spec=calendars.spec_of(body))
    return _calendar_out(await calendars.view(session, access.tenant))


@router.delete("/calendar", status_code=204,
               summary="Drop the tenant's own calendar; it inherits again")
async def delete_calendar(access: TenantsWrite, session: ScopedSession) -> Response:
    await calendars.delete_own(session, caller=access.principal, tenant=access.tenant)
    return Response(status_code=204)
