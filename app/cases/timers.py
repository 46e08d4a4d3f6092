"""SLA timers: ``nentang worker`` fires each due timer exactly once.

Any number of workers may run. A worker *claims* a batch of due timers by writing its name
and a lease on them (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers take
different rows; SQLite serialises writers anyway), then fires each in its own transaction:
it locks the case, checks the timer is still its own, still unfired and still due, applies
the breach rules and marks the timer fired, all in one commit. A worker that dies leaves
leases that expire, and another worker takes the timers over; a fired timer is never claimed
again, so no breach happens twice.

Breach rules: ``notify`` writes an outbox event for the roles to be told; ``escalate`` and
``reassign`` widen who may act (the engine's ``breach``); ``action`` takes the action as the
platform itself, and records a refusal (say, a guard that does not hold) instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases import service
from app.cases.models import Case, CaseTimer
from app.core import metrics
from app.core.db import Database, on_postgresql, utcnow
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope
from app.workflows import engine

log = logging.getLogger("nentang.worker")
# Timers fired per transaction: one commit (one log flush) for many, with a savepoint each.
FIRE_BATCH = 50


@dataclass
class Fired:
    """What a run did, for progress output and tests."""

    fired: int = 0
    skipped: int = 0
    claimed: int = 0
    errors: list[str] = field(default_factory=list)


async def _platform(session: AsyncSession) -> None:
    await apply_scope(session, TenantScope.platform("worker"))


async def claim(db: Database, owner: str, *, now: datetime, batch: int,
                lease: timedelta) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Lease up to ``batch`` due timers to ``owner``; returns their keys."""
    async with db.sessionmaker() as session, session.begin():
        await _platform(session)
        due = (select(CaseTimer.tenant_id, CaseTimer.id)
               .where(CaseTimer.fired_at.is_(None), CaseTimer.due_at <= now,
                      (CaseTimer.lease_until.is_(None)) | (CaseTimer.lease_until < now))
               .order_by(CaseTimer.due_at).limit(batch))
        if on_postgresql(session):
            due = due.with_for_update(skip_locked=True)
        keys = [(row.tenant_id, row.id) for row in (await session.execute(due)).all()]
        if keys:
            await session.execute(
                update(CaseTimer)
                .where(CaseTimer.id.in_([k[1] for k in keys]))
                .values(lease_owner=owner, lease_until=now + lease)
                .execution_options(synchronize_session=False))
    return keys


async def release(session: AsyncSession, owner: str) -> int:
    """Give up ``owner``'s leases on timers it has not fired (a clean stop); returns how many.
    ``session`` is in the platform scope."""
    freed = await session.execute(
        update(CaseTimer).where(CaseTimer.lease_owner == owner, CaseTimer.fired_at.is_(None))
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False))
    return getattr(freed, "rowcount", 0) or 0


async def fire(db: Database, owner: str, keys: list[tuple[uuid.UUID, uuid.UUID]], *,
               now: datetime, result: Fired) -> None:
    """Fire claimed timers in one transaction, each in its own savepoint (one that fails is
    rolled back alone and reported). A timer no longer applies when the case moved on,
    another worker took it over, or it is not due any more."""
    async with db.sessionmaker() as session, session.begin():
        await _platform(session)
        for key in keys:
            try:
                async with session.begin_nested():
                    fired = await _fire_one(session, owner, key, now)
            except Exception as exc:  # one bad case must not stop the others
                log.exception("timer %s failed", key[1])
                result.errors.append(f"{key[1]}: {type(exc).__name__}")
                continue
            if fired:
                result.fired += 1
            else:
                result.skipped += 1


async def _fire_one(session: AsyncSession, owner: str, key: tuple[uuid.UUID, uuid.UUID],
                    now: datetime) -> bool:
    tenant_id, timer_id = key
    # The case first, then its timer: the order every change to a case takes its locks in.
    case = (await session.execute(
        select(Case).join(CaseTimer, (CaseTimer.tenant_id == Case.tenant_id)
                          & (CaseTimer.case_id == Case.id))
        .where(CaseTimer.tenant_id == tenant_id, CaseTimer.id == timer_id)
        .with_for_update(of=Case))).scalar_one_or_none()
    timer = (await session.execute(select(CaseTimer).where(
        CaseTimer.tenant_id == tenant_id, CaseTimer.id == timer_id).with_for_update()
    )).scalar_one_or_none()
    if case is None or timer is None:
        return False
    if (timer.fired_at is not None or timer.lease_owner != owner or timer.due_at is None
            or timer.due_at > now or case.status != "open"):
        return False
    timer.fired_at = now
    await _breach(session, case, timer, now)
    return True


async def _breach(session: AsyncSession, case: Case, timer: CaseTimer, now: datetime) -> None:
    workflow = await service.pinned(session, case)
    whole_case = timer.kind == "case"
    rule_set = workflow.sla if whole_case else workflow.states[case.state].sla
    rules = [dict(r) for r in rule_set.on_breach] if rule_set else []
    current = service.engine_case(case)
    for rule in rules:
        if rule["type"] in ("escalate", "reassign"):
            current = engine.breach(current, rule, whole_case=whole_case)
    changed = current != service.engine_case(case)
    if changed:
        case.extra = [vars(e) for e in current.extra]
        case.assignee = current.assignee
        case.revision += 1
        case.updated_at = now
    await service.record_breach(session, case, workflow, timer_kind=timer.kind,
                                state=timer.state, rules=rules, now=now, changed=changed)
    await metrics.sla_breach(session, case.tenant_id, rules)
    for rule in rules:
        if rule["type"] != "action":
            continue
        try:
            outcome = engine.take(workflow, service.engine_case(case), service.SYSTEM_ACTOR,
                                  engine.Request(rule["action"]))
        except engine.Refused as refusal:
            await service.record_breach_refusal(session, case, rule["action"], refusal, now)
            continue
        tenant = (await session.execute(select(Tenant).where(Tenant.id == case.tenant_id))
                  ).scalar_one()
        await service.store_outcome(session, tenant, case, workflow, outcome, actor="system",
                                    actor_id=None, comment=None, now=now)
        break  # the case has moved on: later rules were about the state it left


async def run_once(db: Database, owner: str, *, batch: int = 200,
                   lease: timedelta = timedelta(seconds=60),
                   clock: Callable[[], datetime] = utcnow,
                   stop: asyncio.Event | None = None) -> Fired:
    """Fire every timer due now, batch by batch, until none is left (or ``stop`` is set:
    then no further batch is claimed)."""
    result = Fired()
    while stop is None or not stop.is_set():
        now = clock()
        keys = await claim(db, owner, now=now, batch=batch, lease=lease)
        if not keys:
            return result
        result.claimed += len(keys)
        for start in range(0, len(keys), FIRE_BATCH):
            await fire(db, owner, keys[start:start + FIRE_BATCH], now=now, result=result)
    return result
