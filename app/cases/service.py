"""Cases: opening one when a submission arrives, taking actions, claiming and assigning.

Every change follows one pattern, in one transaction: lock the case row, check its revision
against the caller's ``If-Match`` where the API demands one, ask the pure engine
(:mod:`app.workflows.engine`) what the change means, then store the new state, an
append-only history entry, the tasks (who may act now), the SLA timers and the outbox events.
Two conflicting requests therefore serialise on the row: the second sees the first's
revision and gets 412, so no update is lost and no transition happens twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases import delegations
from app.cases.models import Case, CaseHistory, CaseTask, CaseTimer
from app.cases.schemas import SlaStatus
from app.core.db import utcnow
from app.core.outbox import OutboxEvent, emit
from app.core.problems import Problem, not_found
from app.definitions.models import VersionStatus
from app.deliveries import service as deliveries
from app.deliveries import subscriptions
from app.forms.models import FormVersion, Submission
from app.identity import principals
from app.identity.callers import Principal
from app.identity.models import Principal as PrincipalRow
from app.identity.permissions import Permission
from app.identity.principals import path_ids
from app.tenancy import repository as tenants
from app.tenancy.models import Tenant
from app.tenancy.scope import platform_read
from app.workflows import calendar as sla
from app.workflows import engine
from app.workflows.calendars import effective_at
from app.workflows.definitions import (
    APPLICANT,
    JURISDICTIONS,
    SYSTEM,
    Sla,
    Workflow,
    compile_workflow,
)
from app.workflows.models import Workflow as WorkflowHead
from app.workflows.models import WorkflowVersion

# ---- finding -------------------------------------------------------------------------------


async def bound_workflow(session: AsyncSession, tenant: Tenant,
                         form_key: str) -> tuple[WorkflowHead, WorkflowVersion] | None:
    """The workflow a submission of ``form_key`` at ``tenant`` opens a case of: the nearest
    on the lineage whose current version is published and binds the form."""
    lineage = path_ids(tenant.path)
    rows = (await session.execute(
        select(WorkflowHead, WorkflowVersion)
        .join(WorkflowVersion, and_(WorkflowVersion.tenant_id == WorkflowHead.tenant_id,
                                    WorkflowVersion.workflow_id == WorkflowHead.id,
                                    WorkflowVersion.number == WorkflowHead.latest_version))
        .where(WorkflowHead.form_key == form_key, WorkflowHead.tenant_id.in_(lineage),
               WorkflowVersion.status == VersionStatus.PUBLISHED.value))).all()
    if not rows:
        return None
    head, version = max(rows, key=lambda r: lineage.index(r[0].tenant_id))
    return head, version


async def get(session: AsyncSession, tenant: Tenant, case_id: uuid.UUID, *,
              lock: bool = False) -> Case:
    statement = select(Case).where(Case.tenant_id == tenant.id, Case.id == case_id)
    if lock:
        statement = statement.with_for_update()
    found = (await session.execute(statement)).scalar_one_or_none()
    if found is None:
        raise not_found("case", str(case_id))
    return found


# Compiled workflow versions by (tenant, workflow, number). Published versions never change
# (database triggers refuse it) and a case only ever pins a published one, so a version read
# once serves every later request on this process.
_PINNED: dict[tuple[uuid.UUID, uuid.UUID, int], Workflow] = {}
_PINNED_MAX = 1024


async def pinned(session: AsyncSession, case: Case) -> Workflow:
    """The compiled workflow version the case runs on."""
    key = (case.workflow_tenant_id, case.workflow_id, case.workflow_version)
    found = _PINNED.get(key)
    if found is None:
        definition = (await session.execute(select(WorkflowVersion.definition).where(
            WorkflowVersion.tenant_id == key[0], WorkflowVersion.workflow_id == key[1],
            WorkflowVersion.number == key[2]))).scalar_one()
        found = compile_workflow(definition)
        if len(_PINNED) >= _PINNED_MAX:
            _PINNED.pop(next(iter(_PINNED)))
        _PINNED[key] = found
    return found


# ---- who is acting ---------------------------------------------------------------------------


def routes_from(lineage: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Where each jurisdiction lies for a case at the last tenant of ``lineage`` (root first,
    as ``(path, kind)``): its own tenant, its parent, and the nearest province and ministry
    on the lineage (itself included)."""
    routes = {"case": lineage[-1][0]}
    if len(lineage) > 1:
        routes["parent"] = lineage[-2][0]
    for path, kind in reversed(lineage):
        if kind in ("province", "ministry"):
            routes.setdefault(kind, path)
    return routes


def acting_grants(principal: Principal) -> list[tuple[str, str]]:
    """``(role, path)`` of the grants that let the principal act on cases."""
    return [(g.role, g.path) for g in principal.grants
            if Permission.CASES_ACT in g.permissions
            and (principal.scopes is None or Permission.CASES_ACT in principal.scopes)]


def actor_for(principal: Principal, case: Case,
              standing_in: Sequence[Principal] = ()) -> engine.Actor:
    """The engine's view of ``principal`` on ``case``, with the roles of the officials it
    stands in for (:mod:`app.cases.delegations`)."""
    roles: dict[str, set[str]] = {}
    grants = acting_grants(principal) + [g for d in standing_in for g in acting_grants(d)]
    for role, path in grants:
        for jurisdiction in JURISDICTIONS:
            at = case.routes.get(jurisdiction)
            if at is not None and at.startswith(path):
                roles.setdefault(role, set()).add(jurisdiction)
    return engine.Actor(id=str(principal.id), roles={r: frozenset(j) for r, j in roles.items()},
                        is_applicant=case.applicant == str(principal.id),
                        acting_for=frozenset(str(d.id) for d in standing_in))


SYSTEM_ACTOR = engine.Actor(id=SYSTEM, is_system=True)


def engine_case(case: Case) -> engine.Case:
    return engine.Case(
        state=case.state, data=case.data, assignee=case.assignee,
        votes=tuple(engine.Vote(**v) for v in case.votes),
        extra=tuple(engine.Extra(**e) for e in case.extra))


def etag(case: Case) -> str:
    return f'"{case.id}.{case.revision}"'


def check_etag(case: Case, if_match: str | None) -> None:
    if if_match is None:
        raise Problem(428, "precondition-required", "Thiếu điều kiện If-Match",
                      "Precondition required", detail="Send the case's ETag in If-Match: "
                      "actions apply only to the version of the case you have seen.")
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if etag(case) not in tags and "*" not in tags:
        raise Problem(412, "case-changed", "Hồ sơ đã được người khác xử lý",
                      "Someone else acted first",
                      detail="The case changed since you read it; read it again and decide "
                      "on its current state.", extra={"etag": etag(case)})


# ---- deadlines, tasks, history -----------------------------------------------------------


def _threshold(rule: Sla) -> timedelta:
    return rule.due_soon if rule.due_soon is not None else min(rule.duration / 5,
                                                               timedelta(days=1))


def _pauses(case: Case) -> list[tuple[datetime, datetime | None]]:
    closed = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in case.pauses]
    return [*closed, (case.paused_since, None)] if case.paused_since else list(closed)


def _deadlines(rule: Sla | None, start: datetime, calendar: sla.WorkingCalendar,
               pauses: Sequence[tuple[datetime, datetime | None]]
               ) -> tuple[datetime | None, datetime | None]:
    if rule is None:
        return None, None
    due = sla.due(start, rule.duration, mode=rule.days, calendar=calendar, pauses=pauses)
    soon = sla.due(start, rule.duration - _threshold(rule), mode=rule.days,
                   calendar=calendar, pauses=pauses)
    return due, soon


async def _schedule(session: AsyncSession, case: Case, workflow: Workflow,
                    calendar: sla.WorkingCalendar) -> None:
    """Recompute the case's deadlines and replace its pending timers. A timer that fired
    is kept, so a breach happens once per case (or once per stay in a state)."""
    state = workflow.states[case.state]
    open_ = case.status == "open"
    case.case_due_at, case.case_due_soon_at = _deadlines(
        workflow.sla if open_ else None, case.created_at, calendar, _pauses(case))
    case.state_due_at, case.state_due_soon_at = _deadlines(
        state.sla if open_ and not state.waits_on_applicant else None, case.state_entered_at,
        calendar, [])
    await session.execute(delete(CaseTimer).where(
        CaseTimer.tenant_id == case.tenant_id, CaseTimer.case_id == case.id,
        CaseTimer.fired_at.is_(None)))
    fired = (await session.execute(select(CaseTimer.kind, CaseTimer.state, CaseTimer.fired_at)
                                   .where(CaseTimer.tenant_id == case.tenant_id,
                                          CaseTimer.case_id == case.id))).all()
    if case.case_due_at and not any(f.kind == "case" for f in fired):
        session.add(CaseTimer(tenant_id=case.tenant_id, id=uuid.uuid4(), case_id=case.id,
                              kind="case", due_at=case.case_due_at))
    if case.state_due_at and not any(
            f.kind == "state" and f.state == case.state and f.fired_at >= case.state_entered_at
            for f in fired):
        session.add(CaseTimer(tenant_id=case.tenant_id, id=uuid.uuid4(), case_id=case.id,
                              kind="state", state=case.state, due_at=case.state_due_at))


def task_rows(case: Case, workflow: Workflow) -> set[tuple[str, str, bool]]:
    """``(role, at_path, escalated)`` for everyone who may act on the open case now."""
    if case.status != "open":
        return set()
    rows: set[tuple[str, str, bool]] = set()
    state = workflow.states[case.state]
    for action in workflow.leaving(case.state):
        for role in action.roles:
            if role not in (APPLICANT, SYSTEM) and action.at in case.routes:
                rows.add((role, case.routes[action.at], False))
    if state.approval is not None and state.approval.at in case.routes:
        rows |= {(seat, case.routes[state.approval.at], False) for seat in state.approval.seats}
    for extra in case.extra:
        if extra["at"] in case.routes:
            rows.add((extra["role"], case.routes[extra["at"]], True))
    escalated = {(r, p) for r, p, e in rows if e}
    return {(r, p, e) for r, p, e in rows if e or (r, p) not in escalated}


async def _replace_tasks(session: AsyncSession, case: Case, workflow: Workflow) -> None:
    await session.execute(delete(CaseTask).where(CaseTask.tenant_id == case.tenant_id,
                                                 CaseTask.case_id == case.id))
    session.add_all([CaseTask(tenant_id=case.tenant_id, case_id=case.id, role=role,
                              at_path=path, escalated=escalated)
                     for role, path, escalated in sorted(task_rows(case, workflow))])


async def _record(session: AsyncSession, case: Case, *, kind: str, actor: str,
                  actor_id: str | None, at: datetime, **fields: Any) -> None:
    seq = (await session.execute(select(func.coalesce(func.max(CaseHistory.seq), 0)).where(
        CaseHistory.tenant_id == case.tenant_id, CaseHistory.case_id == case.id)
    )).scalar_one() + 1
    session.add(CaseHistory(tenant_id=case.tenant_id, case_id=case.id, seq=seq, kind=kind,
                            at=at, actor=actor, actor_id=actor_id, **fields))


async def _emit(session: AsyncSession, case: Case, topic: str, at: datetime,
                **payload: Any) -> OutboxEvent:
    """Write the event, and queue it for the subscriptions on the case's lineage."""
    event = emit(session, tenant_id=case.tenant_id, topic=topic, aggregate_type="case",
                 aggregate_id=case.id, aggregate_seq=case.revision, at=at,
                 payload={"case": str(case.id), "workflow": case.workflow_key,
                          "version": case.workflow_version, "state": case.state,
                          "status": case.status, **payload})
    await subscriptions.fan_out(session, event, subscriptions.Subject(
        kind="case", id=case.id, tenant_id=case.tenant_id, form=case.form_key, data=case.data,
        about={"workflow": case.workflow_key, "version": case.workflow_version,
               "state": case.state, "status": case.status}),
        lambda: submission_definition(session, case))
    return event


async def _emit_hooks(session: AsyncSession, case: Case, hooks: Sequence[engine.Hook],
                      at: datetime) -> None:
    """One event per hook; a webhook's event is queued for its URL in the same transaction
    (a data-sharing hook's event goes to the subscriptions that want it)."""
    for hook in hooks:
        event = await _emit(session, case, f"case.hook.{hook.hook['type']}", at,
                            when=hook.when, hook_state=hook.state, hook=dict(hook.hook))
        if hook.hook["type"] == "webhook":
            deliveries.enqueue(session, event, kind="webhook", target=hook.hook["url"])


# ---- opening ---------------------------------------------------------------------------------


async def _submitted(session: AsyncSession, submission: Submission) -> None:
    """The ``submission.submitted`` event, for the subscriptions that want it."""
    event = emit(session, tenant_id=submission.tenant_id, topic="submission.submitted",
                 aggregate_type="submission", aggregate_id=submission.id, aggregate_seq=1,
                 payload={"submission": str(submission.id), "form": submission.form_key,
                          "form_version": submission.form_version})

    async def definition() -> dict[str, Any]:
        return dict((await session.execute(select(FormVersion.definition).where(
            FormVersion.tenant_id == submission.form_tenant_id,
            FormVersion.form_id == submission.form_id,
            FormVersion.number == submission.form_version))).scalar_one())

    await subscriptions.fan_out(session, event, subscriptions.Subject(
        kind="submission", id=submission.id, tenant_id=submission.tenant_id,
        form=submission.form_key, data=submission.data,
        about={"form_version": submission.form_version}), definition)


async def open_for_submission(session: AsyncSession, *, principal: Principal, tenant: Tenant,
                              submission: Submission) -> Case | None:
    """A submission was submitted: its event, and a case if its form binds to a workflow
    here."""
    await _submitted(session, submission)
    bound = await bound_workflow(session, tenant, submission.form_key)
    if bound is None:
        return None
    head, version = bound
    workflow = compile_workflow(version.definition)
    start, hooks = engine.open_case(workflow, submission.data)
    now = utcnow()
    case = Case(
        tenant_id=tenant.id, id=uuid.uuid4(), submission_id=submission.id,
        form_key=submission.form_key, workflow_key=head.key, workflow_tenant_id=head.tenant_id,
        workflow_id=head.id, workflow_version=version.number, state=start.state,
        status="open", data=dict(start.data), votes=[], extra=[], assignee=None,
        applicant=str(principal.id),
        routes=routes_from(await tenants.lineage_kinds(session, tenant)), revision=1,
        created_at=now, updated_at=now, state_entered_at=now, pauses=[],
        paused_since=now if workflow.states[start.state].waits_on_applicant else None)
    session.add(case)
    await session.flush()
    await _schedule(session, case, workflow, await effective_at(session, tenant))
    await _replace_tasks(session, case, workflow)
    await _record(session, case, kind="opened", actor=principal.actor,
                  actor_id=str(principal.id), at=now, to_state=case.state)
    await _emit(session, case, "case.opened", now, submission=str(submission.id))
    await _emit_hooks(session, case, hooks, now)
    await session.flush()
    return case


async def case_of(session: AsyncSession, submission: Submission) -> uuid.UUID | None:
    return (await session.execute(select(Case.id).where(
        Case.tenant_id == submission.tenant_id, Case.submission_id == submission.id)
    )).scalar_one_or_none()


# ---- acting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionInput:
    fields: dict[str, Any]
    comment: str | None
    seat: str | None


def _refused(refusal: engine.Refused) -> Problem:
    return Problem(refusal.status, refusal.code, refusal.vi, refusal.en, detail=refusal.en,
                   errors=[e.as_dict() for e in refusal.errors])


def _apply(case: Case, workflow: Workflow, outcome: engine.Outcome, now: datetime) -> None:
    """Store the engine's outcome on the case row (the caller bumps nothing else)."""
    case.data = dict(outcome.case.data)
    case.votes = [vars(v) for v in outcome.case.votes]
    case.extra = [vars(e) for e in outcome.case.extra]
    case.assignee = outcome.case.assignee
    if outcome.moved:
        left, entered = workflow.states[outcome.source], workflow.states[outcome.target]
        if left.waits_on_applicant and case.paused_since is not None:
            case.pauses = [*case.pauses, [case.paused_since.isoformat(), now.isoformat()]]
            case.paused_since = None
        if entered.waits_on_applicant and case.paused_since is None:
            case.paused_since = now
        case.state, case.state_entered_at = entered.name, now
        if entered.type == "terminal":
            case.status, case.outcome, case.closed_at = "closed", entered.outcome, now
    case.revision += 1
    case.updated_at = now


async def store_outcome(session: AsyncSession, tenant: Tenant, case: Case, workflow: Workflow,
                        outcome: engine.Outcome, *, actor: str, actor_id: str | None,
                        comment: str | None, now: datetime,
                        on_behalf_of: Sequence[str] = (),
                        signature_ref: str | None = None) -> None:
    """Store what the engine decided, with its history entry, tasks, timers and events."""
    _apply(case, workflow, outcome, now)
    await _schedule(session, case, workflow, await effective_at(session, tenant))
    await _replace_tasks(session, case, workflow)
    detail: dict[str, Any] = {}
    if outcome.vote:
        detail["vote"] = vars(outcome.vote)
    if on_behalf_of:
        detail["on_behalf_of"] = list(on_behalf_of)
    await _record(session, case, kind="vote" if outcome.vote and not outcome.moved else "action",
                  actor=actor, actor_id=actor_id, at=now, action=outcome.action,
                  from_state=outcome.source, to_state=outcome.target if outcome.moved else None,
                  comment=comment, changes=dict(outcome.changes) or None,
                  detail=detail or None, signature_ref=signature_ref)
    await _emit(session, case, "case.action_taken", now, action=outcome.action,
          source=outcome.source, moved=outcome.moved, actor=actor)
    if case.status == "closed":
        await _emit(session, case, "case.closed", now, outcome=case.outcome)
        if case.outcome in ("approved", "rejected", "completed"):  # not a withdrawal
            await _emit(session, case, "case.decision_issued", now, outcome=case.outcome,
                        action=outcome.action)
    await _emit_hooks(session, case, outcome.hooks, now)
    await session.flush()


async def record_breach(session: AsyncSession, case: Case, workflow: Workflow, *,
                        timer_kind: str, state: str | None, rules: list[dict[str, Any]],
                        now: datetime, changed: bool) -> None:
    """A deadline passed: the history says so, the outbox tells whom to notify, and the
    tasks follow an escalation or reassignment."""
    if changed:
        await _replace_tasks(session, case, workflow)
    await _record(session, case, kind="breach", actor="system", actor_id=None, at=now,
                  from_state=case.state,
                  detail={"timer": timer_kind, "state": state, "rules": rules})
    notify = [{"roles": r["roles"], "at": case.routes.get(r.get("at", "case"))}
              for r in rules if r["type"] == "notify"]
    await _emit(session, case, "case.sla_breached", now, timer=timer_kind, breached_state=state,
          notify=notify)
    await session.flush()


async def record_breach_refusal(session: AsyncSession, case: Case, action: str,
                                refusal: engine.Refused, now: datetime) -> None:
    await _record(session, case, kind="breach", actor="system", actor_id=None, at=now,
                  action=action, from_state=case.state,
                  detail={"refused": refusal.code, "reason": refusal.en})


@dataclass(frozen=True)
class Prepared:
    """An action the engine allows on a locked case, not yet stored."""

    tenant: Tenant
    case: Case
    workflow: Workflow
    outcome: engine.Outcome
    principal: Principal
    comment: str | None
    on_behalf_of: list[str]


async def prepare_action(session: AsyncSession, *, principal: Principal, tenant: Tenant,
                         case_id: uuid.UUID, action: str, if_match: str | None,
                         given: ActionInput, signed: bool = False) -> Prepared:
    """Lock the case, check its ETag and let the engine decide; ``signed`` says a valid
    signature is at hand (or will be before anything is stored)."""
    case = await get(session, tenant, case_id, lock=True)
    check_etag(case, if_match)
    workflow = await pinned(session, case)
    request = engine.Request(action, fields=given.fields, comment=given.comment,
                             signed=signed, seat=given.seat)
    standing_in = await delegations.delegators(session, principal)
    try:
        outcome = engine.take(workflow, engine_case(case),
                              actor_for(principal, case, standing_in), request)
    except engine.Refused as refusal:
        raise _refused(refusal) from None
    return Prepared(tenant, case, workflow, outcome, principal,
                    (given.comment or "").strip() or None,
                    _on_behalf_of(workflow, case, principal, standing_in, action))


async def commit_action(session: AsyncSession, prepared: Prepared, *,
                        signature_ref: str | None = None) -> Case:
    await store_outcome(session, prepared.tenant, prepared.case, prepared.workflow,
                        prepared.outcome, actor=prepared.principal.actor,
                        actor_id=str(prepared.principal.id), comment=prepared.comment,
                        now=utcnow(), on_behalf_of=prepared.on_behalf_of,
                        signature_ref=signature_ref)
    return prepared.case


async def take_action(session: AsyncSession, *, principal: Principal, tenant: Tenant,
                      case_id: uuid.UUID, action: str, if_match: str | None,
                      given: ActionInput) -> Case:
    return await commit_action(session, await prepare_action(
        session, principal=principal, tenant=tenant, case_id=case_id, action=action,
        if_match=if_match, given=given))


def _on_behalf_of(workflow: Workflow, case: Case, principal: Principal,
                  standing_in: Sequence[Principal], action: str) -> list[str]:
    """The delegators an action was taken for: those it needed (its own roles or claim did
    not allow it)."""
    if not standing_in:
        return []
    own = actor_for(principal, case)
    state = engine_case(case)
    if engine.may_take(workflow.actions[action], state, own) and (
            workflow.states[case.state].assignment != "claim"
            or own.is_or_stands_in_for(case.assignee)):
        return []
    return [str(d.id) for d in standing_in]


async def _change_assignment(session: AsyncSession, tenant: Tenant, case: Case,
                             changed: engine.Case, *, kind: str, principal: Principal,
                             detail: dict[str, Any] | None = None) -> Case:
    now = utcnow()
    case.assignee, case.revision, case.updated_at = changed.assignee, case.revision + 1, now
    await _record(session, case, kind=kind, actor=principal.actor, actor_id=str(principal.id),
                  at=now, detail=detail)
    await _emit(session, case, f"case.{kind}", now, assignee=case.assignee)
    await session.flush()
    return case


async def claim(session: AsyncSession, *, principal: Principal, tenant: Tenant,
                case_id: uuid.UUID) -> Case:
    case = await get(session, tenant, case_id, lock=True)
    workflow = await pinned(session, case)
    standing_in = await delegations.delegators(session, principal)
    try:
        changed = engine.claim(engine_case(case), actor_for(principal, case, standing_in),
                               workflow)
    except engine.Refused as refusal:
        raise _refused(refusal) from None
    if changed.assignee == case.assignee:
        return case
    return await _change_assignment(session, tenant, case, changed, kind="claim",
                                    principal=principal)


async def release(session: AsyncSession, *, principal: Principal, tenant: Tenant,
                  case_id: uuid.UUID) -> Case:
    """Give a claimed case back to the pool: its claimant, or anyone who may assign it."""
    case = await get(session, tenant, case_id, lock=True)
    if case.assignee is None:
        return case
    if case.assignee != str(principal.id):
        _require_assigner(principal, tenant)
    return await _change_assignment(session, tenant, case, engine.release(engine_case(case)),
                                    kind="release", principal=principal,
                                    detail={"was": case.assignee})


def _require_assigner(principal: Principal, tenant: Tenant) -> None:
    """Assigning others' work is a supervisor's act: it needs ``users:read`` (to know whom)
    besides ``cases:act`` at the case's tenant."""
    if Permission.USERS_READ not in principal.permissions_at(tenant.path):
        raise Problem(403, "forbidden", "Không có quyền phân công", "Forbidden",
                      detail="Assigning or releasing someone else's case needs 'users:read' "
                      "and 'cases:act' here.")


async def assign(session: AsyncSession, *, principal: Principal, tenant: Tenant,
                 case_id: uuid.UUID, assignee: Principal) -> Case:
    _require_assigner(principal, tenant)
    case = await get(session, tenant, case_id, lock=True)
    workflow = await pinned(session, case)
    try:
        changed = engine.assign(engine_case(case), actor_for(assignee, case), workflow)
    except engine.Refused as refusal:
        raise _refused(refusal) from None
    return await _change_assignment(session, tenant, case, changed, kind="assign",
                                    principal=principal, detail={"assignee": str(assignee.id)})


async def history(session: AsyncSession, case: Case) -> list[CaseHistory]:
    return list((await session.execute(select(CaseHistory).where(
        CaseHistory.tenant_id == case.tenant_id, CaseHistory.case_id == case.id)
        .order_by(CaseHistory.seq))).scalars())


async def principal_in_scope(session: AsyncSession, principal_id: uuid.UUID) -> Principal:
    """The principal ``principal_id`` as it is now, if the caller can see it (its home lies
    in the caller's scope); 422 otherwise, pointing at ``/assignee``."""
    home = (await session.execute(select(PrincipalRow.tenant_id).where(
        PrincipalRow.id == principal_id))).scalar_one_or_none()
    problem = Problem(422, "assignee-unknown", "Không tìm thấy người được giao",
                      "Unknown assignee", detail="No such active user or client is visible "
                      "to you.", errors=[{"pointer": "/assignee", "detail": "unknown"}])
    if home is None:
        raise problem
    try:
        async with platform_read(session, "load assignee"):
            return await principals.load(session, principal_id, home, client_id="")
    except Problem:
        raise problem from None


# ---- reading -------------------------------------------------------------------------------


def may_read(principal: Principal, tenant: Tenant, case: Case, workflow: Workflow,
             standing_in: Sequence[Principal] = ()) -> bool:
    """``cases:read`` at the case's tenant reads any case there; ``cases:act`` alone reads
    only the cases its holder may act on now, so an approver at the province sees the
    commune's cases routed to them and nothing else of the commune's."""
    if Permission.CASES_READ in principal.permissions_at(tenant.path):
        return True
    actor = actor_for(principal, case, standing_in)
    return actor.is_applicant or actor.is_or_stands_in_for(case.assignee) or bool(
        engine.available(workflow, engine_case(case), actor))


async def readable(session: AsyncSession, principal: Principal, tenant: Tenant,
                   case_id: uuid.UUID) -> tuple[Case, Workflow]:
    case = await get(session, tenant, case_id)
    workflow = await pinned(session, case)
    if Permission.CASES_READ not in principal.permissions_at(tenant.path) and not may_read(
            principal, tenant, case, workflow, await delegations.delegators(session, principal)):
        raise not_found("case", str(case_id))
    return case, workflow


def sla_status(due: datetime | None, soon: datetime | None, now: datetime,
               paused: bool) -> SlaStatus | None:
    if paused:
        return "paused"
    if due is None:
        return None
    if now >= due:
        return "overdue"
    return "due_soon" if soon is not None and now >= soon else "on_time"


async def submission_definition(session: AsyncSession, case: Case) -> dict[str, Any]:
    """The form version the case's submission was made with (for masking its data)."""
    row = (await session.execute(
        select(FormVersion.definition).join(Submission, and_(
            Submission.form_tenant_id == FormVersion.tenant_id,
            Submission.form_id == FormVersion.form_id,
            Submission.form_version == FormVersion.number))
        .where(Submission.tenant_id == case.tenant_id, Submission.id == case.submission_id)
    )).scalar_one()
    return dict(row)


async def listed(session: AsyncSession, tenant: Tenant, *, status: str | None,
                 workflow: str | None, state: str | None, after: tuple[str, str] | None,
                 limit: int) -> list[Case]:
    """Cases here and below, most recently changed first."""
    statement = select(Case).where(Case.tenant_id.in_(
        select(Tenant.id).where(Tenant.path.startswith(tenant.path))))
    if status is not None:
        statement = statement.where(Case.status == status)
    if workflow is not None:
        statement = statement.where(Case.workflow_key == workflow)
    if state is not None:
        statement = statement.where(Case.state == state)
    if after is not None:
        moment, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
        statement = statement.where((Case.updated_at < moment) | (
            (Case.updated_at == moment) & (Case.id < last)))
    return list((await session.execute(statement.order_by(
        Case.updated_at.desc(), Case.id.desc()).limit(limit))).scalars())


async def move_to_version(session: AsyncSession, case: Case, version: WorkflowVersion,
                          workflow: Workflow, state: str, *, calendar: sla.WorkingCalendar,
                          principal: Principal, now: datetime) -> None:
    """Re-pin a running case to ``version`` in ``state`` (see :mod:`app.cases.migration`)."""
    before = (case.workflow_version, case.state)
    entered = workflow.states[state]
    if case.paused_since is not None and not entered.waits_on_applicant:
        case.pauses = [*case.pauses, [case.paused_since.isoformat(), now.isoformat()]]
        case.paused_since = None
    elif case.paused_since is None and entered.waits_on_applicant:
        case.paused_since = now
    if state != case.state:  # a renamed state: the stay goes on, and so does its breach
        await session.execute(update(CaseTimer).where(
            CaseTimer.tenant_id == case.tenant_id, CaseTimer.case_id == case.id,
            CaseTimer.kind == "state", CaseTimer.state == case.state,
            CaseTimer.fired_at.is_not(None)).values(state=state))
    case.workflow_version, case.state = version.number, state
    case.extra = [e for e in case.extra if e.get("state") in (None, state)]
    case.revision += 1
    case.updated_at = now
    await _schedule(session, case, workflow, calendar)
    await _replace_tasks(session, case, workflow)
    await _record(session, case, kind="migrate", actor=principal.actor,
                  actor_id=str(principal.id), at=now, from_state=before[1], to_state=state,
                  detail={"from_version": before[0], "to_version": version.number})
    await _emit(session, case, "case.migrated", now, from_version=before[0], from_state=before[1])
    await session.flush()
