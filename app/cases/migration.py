"""Moving running cases to another version of their workflow.

Cases keep the version they started on; nothing moves them but this, on an administrator's
explicit request with a state mapping (``{"old state": "new state"}``; a state not named
keeps its name). The dry run lists every case that would move and every case that cannot,
with the reason, and changes nothing; the real run moves the movable ones in one
transaction, each with a history entry and an outbox event, and leaves the rest where they
are.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases import service
from app.cases.models import Case
from app.core.db import utcnow
from app.core.problems import Problem
from app.definitions.models import VersionStatus
from app.identity.callers import Principal
from app.tenancy.models import Tenant
from app.workflows import engine
from app.workflows.calendars import effective_at
from app.workflows.definitions import compile_workflow
from app.workflows.models import Workflow as WorkflowHead
from app.workflows.models import WorkflowVersion
from app.workflows.service import WORKFLOWS


@dataclass
class Plan:
    to_version: int
    moved: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    remaining: int = 0


async def _target(session: AsyncSession, head: WorkflowHead, tenant: Tenant,
                  number: int) -> WorkflowVersion:
    version = await WORKFLOWS.version(session, head, tenant, number)
    if version.status != VersionStatus.PUBLISHED.value:
        raise Problem(422, "version-not-published", "Phiên bản chưa ban hành",
                      "Version not published", detail=f"Cases move only to a published "
                      f"version; version {number} is {version.status}.",
                      errors=[{"pointer": "/to_version", "detail": version.status}])
    return version


async def migrate(session: AsyncSession, *, principal: Principal, tenant: Tenant, key: str,
                  to_version: int, from_version: int | None, mapping: dict[str, str],
                  dry_run: bool, limit: int) -> Plan:
    head = await WORKFLOWS.own(session, tenant, key, lock=not dry_run)
    target = await _target(session, head, tenant, to_version)
    new = compile_workflow(target.definition)
    unknown = sorted(set(mapping.values()) - set(new.states))
    if unknown:
        raise Problem(422, "unknown-state", "Bước không có trong phiên bản mới",
                      "Unknown state", detail=f"Version {to_version} has no state "
                      f"{', '.join(repr(u) for u in unknown)}.",
                      errors=[{"pointer": f"/states/{old}", "detail": "no such state"}
                              for old, new_name in sorted(mapping.items())
                              if new_name in unknown])
    selected = select(Case).where(
        Case.workflow_tenant_id == head.tenant_id, Case.workflow_id == head.id,
        Case.status == "open", Case.workflow_version != to_version)
    if from_version is not None:
        selected = selected.where(Case.workflow_version == from_version)
    total = (await session.execute(select(func.count()).select_from(selected.subquery())
                                   )).scalar_one()
    statement = selected.order_by(Case.created_at, Case.id).limit(limit)
    if not dry_run:
        statement = statement.with_for_update()
    rows = (await session.execute(statement)).scalars().all()
    plan = Plan(to_version=to_version, remaining=max(0, total - len(rows)))
    calendars: dict[uuid.UUID, Any] = {}
    for case in rows:
        try:
            state = engine.migration_target(new, service.engine_case(case), mapping)
        except engine.Refused as refusal:
            plan.blocked.append({"case": case.id, "tenant_id": case.tenant_id,
                                 "version": case.workflow_version, "state": case.state,
                                 "code": refusal.code, "detail": refusal.en,
                                 "detail_vi": refusal.vi})
            continue
        plan.moved.append({"case": case.id, "tenant_id": case.tenant_id,
                           "version": case.workflow_version, "state": case.state,
                           "to_state": state})
        if not dry_run:
            owner = case.tenant_id
            if owner not in calendars:
                calendars[owner] = await effective_at(session, await _tenant(session, owner))
            await service.move_to_version(session, case, target, new, state,
                                          calendar=calendars[owner], principal=principal,
                                          now=utcnow())
    return plan


async def _tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    return (await session.execute(select(Tenant).where(Tenant.id == tenant_id))).scalar_one()
