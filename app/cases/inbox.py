"""The inbox: the open cases a principal may act on now, across every tenant it holds
grants in (``GET /api/v1/me/tasks``).

Each open case carries its tasks (``case_tasks``: a role, held at or above a tenant path), so
the inbox is one statement: per acting grant, an index range scan on ``(role, at_path)``,
joined to the open cases that nobody else has claimed. The engine then lists, per case on the
page, the actions the caller may take.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Integer, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.models import Case, CaseTask
from app.cases.service import acting_grants, actor_for, engine_case, pinned
from app.core.pagination import bad_cursor
from app.identity.callers import Principal
from app.tenancy.models import Tenant, path_upper
from app.workflows import engine
from app.workflows.definitions import Action, Workflow

SlaFilter = Literal["overdue", "due_soon", "on_time", "paused"]
NEVER = datetime(9999, 12, 31, tzinfo=UTC)  # sorts cases without a deadline last


@dataclass(frozen=True)
class Task:
    case: Case
    escalated: bool
    workflow: Workflow
    actions: list[Action]

    @property
    def urgency(self) -> datetime:
        return self.case.state_due_at or self.case.case_due_at or NEVER


def _grant_ranges(principals: Sequence[Principal]) -> dict[str, list[str]]:
    """Per role, the outermost grant paths (a grant inside another adds nothing)."""
    ranges: dict[str, list[str]] = {}
    grants = [g for p in principals for g in acting_grants(p)]
    for role, path in sorted(grants, key=lambda g: (g[0], len(g[1]))):
        held = ranges.setdefault(role, [])
        if not any(path.startswith(p) for p in held):
            held.append(path)
    return ranges


def _sla_condition(wanted: SlaFilter, now: datetime) -> object:
    overdue = or_(Case.state_due_at <= now, Case.case_due_at <= now)
    soon = or_(Case.state_due_soon_at <= now, Case.case_due_soon_at <= now)
    return {
        "overdue": overdue,
        "due_soon": and_(~overdue, soon),
        "on_time": and_(Case.paused_since.is_(None), ~or_(overdue, soon)),
        "paused": Case.paused_since.is_not(None),
    }[wanted]


async def tasks(session: AsyncSession, principal: Principal, *, now: datetime,
                sla: SlaFilter | None, workflow: str | None, tenant: Tenant | None,
                after: list[str] | None, limit: int,
                standing_in: Sequence[Principal] = ()) -> tuple[list[Task], bool]:
    """A page of the caller's tasks (and those of the officials it stands in for), most
    urgent first, and whether more follow."""
    ranges = _grant_ranges([principal, *standing_in])
    if not ranges:
        return [], False
    mine = [str(principal.id), *(str(d.id) for d in standing_in)]
    matching = or_(*(and_(CaseTask.role == role, CaseTask.at_path >= path,
                          CaseTask.at_path < path_upper(path))
                     for role, paths in ranges.items() for path in paths))
    found = (select(CaseTask.tenant_id, CaseTask.case_id,
                    func.max(case((CaseTask.escalated, 1), else_=0)).label("escalated"))
             .where(matching).group_by(CaseTask.tenant_id, CaseTask.case_id).subquery())
    urgency = func.coalesce(Case.state_due_at, Case.case_due_at, NEVER)
    statement = (
        select(Case, found.c.escalated)
        .join(found, and_(found.c.tenant_id == Case.tenant_id, found.c.case_id == Case.id))
        .where(Case.status == "open",
               or_(Case.assignee.is_(None), Case.assignee.in_(mine),
                   found.c.escalated.cast(Integer) == 1)))
    if sla is not None:
        statement = statement.where(_sla_condition(sla, now))  # type: ignore[arg-type]
    if workflow is not None:
        statement = statement.where(Case.workflow_key == workflow)
    if tenant is not None:
        statement = statement.where(Case.tenant_id.in_(
            select(Tenant.id).where(Tenant.path.startswith(tenant.path))))
    if after is not None:
        try:
            moment, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
        except ValueError:
            raise bad_cursor() from None
        statement = statement.where(or_(urgency > moment, and_(urgency == moment,
                                                               Case.id > last)))
    rows = (await session.execute(
        statement.order_by(urgency, Case.id).limit(limit + 1))).all()
    more = len(rows) > limit
    page = []
    for found_case, escalated in rows[:limit]:
        compiled = await pinned(session, found_case)
        actor = actor_for(principal, found_case, standing_in)
        page.append(Task(found_case, bool(escalated), compiled,
                         engine.available(compiled, engine_case(found_case), actor)))
    return page, more
