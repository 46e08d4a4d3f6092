"""Cases under ``/api/v1/tenants/{tenant}/cases``, and the inbox at ``/api/v1/me/tasks``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from app.cases import delegations, inbox, migration, service
from app.cases.models import Case, Delegation
from app.cases.schemas import (
    ActionFieldOut,
    ActionIn,
    AssignIn,
    AvailableAction,
    BlockedCase,
    CaseOut,
    CaseSummary,
    Deadline,
    DelegationIn,
    DelegationOut,
    HistoryOut,
    MigrateIn,
    MigrateOut,
    MovedCase,
    PinnedWorkflow,
    Sla,
    SlaStatus,
    StateOut,
    TaskOut,
    VoteOut,
)
from app.core.db import utcnow
from app.core.pagination import DEFAULT_LIMIT, Limit, Page, decode_cursor, encode_cursor, split_page
from app.definitions.lifecycle import tenant_codes
from app.forms.submissions import mask
from app.identity.auth import CurrentPrincipal, ScopedSession
from app.identity.dependencies import Access, needs, needs_any
from app.identity.permissions import Permission
from app.signing import steps
from app.signing.schemas import SignatureOut
from app.tenancy.models import Tenant
from app.tenancy.repository import get_by_code
from app.workflows import engine
from app.workflows.definitions import Action, Workflow

router = APIRouter(tags=["cases"])
TENANT = "/api/v1/tenants/{tenant}"
CasesRead = Annotated[Access, needs(Permission.CASES_READ)]
CasesAct = Annotated[Access, needs(Permission.CASES_ACT)]
WorkflowsWrite = Annotated[Access, needs(Permission.WORKFLOWS_WRITE)]
CaseReader = Annotated[Access, needs_any(Permission.CASES_READ, Permission.CASES_ACT)]
# The applicant acts on its own case with nothing more than the right to read cases.
CaseActor = Annotated[Access, needs_any(Permission.CASES_ACT, Permission.CASES_READ)]
IfMatch = Annotated[str | None, Header(description="The case's ETag, from a read of it.")]


def _deadline(due: datetime | None, soon: datetime | None, paused: bool) -> Deadline | None:
    if due is None and not paused:
        return None
    return Deadline(due_at=due, due_soon_at=soon,
                    status=service.sla_status(due, soon, utcnow(), paused))


_ORDER: dict[SlaStatus | None, int] = {None: 0, "paused": 0, "on_time": 1, "due_soon": 2,
                                       "overdue": 3}


def _sla(case: Case, workflow: Workflow) -> Sla:
    state = workflow.states[case.state]
    open_ = case.status == "open"
    whole = _deadline(case.case_due_at, case.case_due_soon_at,
                      open_ and workflow.sla is not None and case.paused_since is not None)
    stay = _deadline(case.state_due_at, case.state_due_soon_at,
                     open_ and state.sla is not None and state.waits_on_applicant)
    statuses = [d.status for d in (whole, stay) if d is not None]
    worst = max(statuses, key=lambda s: _ORDER[s], default=None)
    return Sla(case=whole, state=stay, status=worst)


def _action_out(action: Action) -> AvailableAction:
    return AvailableAction(
        name=action.name, title=dict(action.title), to=action.target, vote=action.vote,
        fields={n: ActionFieldOut(title=dict(f["title"]), schema=dict(f["schema"]),
                                  required=bool(f.get("required"))) for n, f in
                action.fields.items()},
        comment=action.comment, signature_required=action.needs_signature,
        signer=action.signer)


def _state_out(workflow: Workflow, name: str) -> StateOut:
    state = workflow.states[name]
    return StateOut(name=state.name, type=state.type, title=dict(state.title))


async def _case_out(session: ScopedSession, access: Access, case: Case,
                    workflow: Workflow, response: Response | None = None) -> CaseOut:
    codes = await tenant_codes(session, {case.tenant_id, case.workflow_tenant_id})
    definition = await service.submission_definition(session, case)
    shown = mask(definition, case.data, access.principal.permissions_at(access.tenant.path))
    actor = service.actor_for(access.principal, case,
                              await delegations.delegators(session, access.principal))
    if response is not None:
        response.headers["ETag"] = service.etag(case)
    return CaseOut(
        id=case.id, tenant=codes[case.tenant_id], submission_id=case.submission_id,
        form=case.form_key, workflow=PinnedWorkflow(
            key=case.workflow_key, tenant=codes.get(case.workflow_tenant_id),
            version=case.workflow_version),
        state=_state_out(workflow, case.state), status=case.status,
        outcome=case.outcome, data=shown.data, masked_fields=shown.masked_fields,
        assignee=case.assignee, revision=case.revision, etag=service.etag(case),
        sla=_sla(case, workflow), votes=[VoteOut(**v) for v in case.votes],
        actions=[_action_out(a) for a in engine.available(
            workflow, service.engine_case(case), actor)] if case.status == "open" else [],
        created_at=case.created_at, updated_at=case.updated_at,
        state_entered_at=case.state_entered_at, closed_at=case.closed_at)


async def _changed(session: ScopedSession, access: Access, case: Case,
                   response: Response) -> CaseOut:
    """The case as it is after a change, with its new ETag."""
    return await _case_out(session, access, case, await service.pinned(session, case),
                           response)


@router.get(TENANT + "/cases", response_model=Page[CaseSummary],
            summary="Cases here and below, most recently changed first")
async def list_cases(access: CasesRead, session: ScopedSession, cursor: str | None = None,
                     limit: Limit = DEFAULT_LIMIT,
                     status: Literal["open", "closed"] | None = None,
                     workflow: Annotated[str | None, Query(max_length=64)] = None,
                     state: Annotated[str | None, Query(max_length=64)] = None,
                     ) -> Page[CaseSummary]:
    after = decode_cursor(cursor, datetime, uuid.UUID)
    rows = await service.listed(session, access.tenant, status=status, workflow=workflow,
                                state=state,
                                after=(after[0].isoformat(), str(after[1])) if after else None,
                                limit=limit + 1)
    page, next_cursor = split_page(rows, limit, lambda c: [c.updated_at.isoformat(), c.id])
    codes = await tenant_codes(session, {c.tenant_id for c in page})
    now = utcnow()
    return Page[CaseSummary](items=[CaseSummary(
        id=c.id, tenant=codes[c.tenant_id], form=c.form_key, workflow=c.workflow_key,
        state=c.state, status=c.status, outcome=c.outcome,
        assignee=c.assignee, created_at=c.created_at, updated_at=c.updated_at,
        sla=_worst(c, now)) for c in page], next_cursor=next_cursor)


def _worst(case: Case, now: datetime) -> SlaStatus | None:
    if case.status != "open":
        return None
    found = [service.sla_status(due, soon, now, False)
             for due, soon in ((case.state_due_at, case.state_due_soon_at),
                               (case.case_due_at, case.case_due_soon_at))]
    if case.paused_since is not None:
        found.append("paused")
    return max(found, key=lambda s: _ORDER[s], default=None)


@router.get(TENANT + "/cases/{case_id}", response_model=CaseOut,
            summary="A case: its data (masked by your permissions), state, SLA, votes and "
            "what you may do now; the ETag header is what If-Match wants")
async def read_case(access: CaseReader, case_id: uuid.UUID, session: ScopedSession,
                    response: Response) -> CaseOut:
    case, workflow = await service.readable(session, access.principal, access.tenant,
                                                      case_id)
    return await _case_out(session, access, case, workflow, response)


@router.get(TENANT + "/cases/{case_id}/history", response_model=list[HistoryOut],
            response_model_by_alias=True, summary="What happened to the case, in order")
async def case_history(access: CaseReader, case_id: uuid.UUID,
                       session: ScopedSession) -> list[HistoryOut]:
    case, _workflow = await service.readable(session, access.principal,
                                                       access.tenant, case_id)
    return [HistoryOut(seq=h.seq, kind=h.kind, at=h.at, actor=h.actor, action=h.action,
                       from_state=h.from_state, to_state=h.to_state, comment=h.comment,
                       changes=h.changes, detail=h.detail, signature_ref=h.signature_ref)
            for h in await service.history(session, case)]


@router.post(TENANT + "/cases/{case_id}/actions/{action}", response_model=CaseOut,
             summary="Take an action (If-Match required: 428 without it, 412 if someone "
             "else acted first); one that needs a digital signature is signed first",
             responses={202: {"model": SignatureOut, "description": "The action waits for "
                              "a signature (see its instructions); the case is unchanged."}})
async def take_action(access: CaseActor, case_id: uuid.UUID, action: str, body: ActionIn,
                      session: ScopedSession, request: Request, response: Response,
                      if_match: IfMatch = None) -> CaseOut | JSONResponse:
    begun = await steps.take_action(
        session, principal=access.principal, tenant=access.tenant, case_id=case_id,
        action=action, if_match=if_match,
        given=service.ActionInput(fields=body.fields, comment=body.comment, seat=body.seat),
        public_url=request.app.state.settings.issuer)
    if begun.case is None:
        assert begun.signature is not None
        return JSONResponse(SignatureOut.of(begun.signature).model_dump(mode="json"),
                            status_code=202, headers={"Location": (
                                f"/api/v1/tenants/{access.tenant.code}/cases/{case_id}"
                                f"/signatures/{begun.signature.id}")})
    return await _changed(session, access, begun.case, response)


@router.post(TENANT + "/cases/{case_id}/claim", response_model=CaseOut,
             summary="Take the case for yourself (in a state that wants it claimed)")
async def claim_case(access: CasesAct, case_id: uuid.UUID, session: ScopedSession,
                     response: Response) -> CaseOut:
    case = await service.claim(session, principal=access.principal, tenant=access.tenant,
                               case_id=case_id)
    return await _changed(session, access, case, response)


@router.post(TENANT + "/cases/{case_id}/release", response_model=CaseOut,
             summary="Give a claimed case back to everyone who may act on it")
async def release_case(access: CasesAct, case_id: uuid.UUID, session: ScopedSession,
                       response: Response) -> CaseOut:
    case = await service.release(session, principal=access.principal, tenant=access.tenant,
                                 case_id=case_id)
    return await _changed(session, access, case, response)


@router.post(TENANT + "/cases/{case_id}/assign", response_model=CaseOut,
             summary="Give the case to someone who may act on it (a supervisor's act)")
async def assign_case(access: CasesAct, case_id: uuid.UUID, body: AssignIn,
                      session: ScopedSession, response: Response) -> CaseOut:
    assignee = await service.principal_in_scope(session, body.assignee)
    case = await service.assign(session, principal=access.principal, tenant=access.tenant,
                                case_id=case_id, assignee=assignee)
    return await _changed(session, access, case, response)


@router.post(TENANT + "/workflows/{key}/migrate", response_model=MigrateOut,
             summary="Move running cases to another version with a state mapping (a dry run "
             "unless dry_run=false)")
async def migrate_cases(access: WorkflowsWrite, key: str, body: MigrateIn,
                        session: ScopedSession) -> MigrateOut:
    plan = await migration.migrate(
        session, principal=access.principal, tenant=access.tenant, key=key,
        to_version=body.to_version, from_version=body.from_version, mapping=body.states,
        dry_run=body.dry_run, limit=body.limit)
    codes = await tenant_codes(session, {c["tenant_id"] for c in plan.moved + plan.blocked})
    return MigrateOut(
        to_version=plan.to_version, dry_run=body.dry_run, remaining=plan.remaining,
        moved=[MovedCase(tenant=codes.get(c["tenant_id"]), **{
            k: v for k, v in c.items() if k != "tenant_id"}) for c in plan.moved],
        cannot_move=[BlockedCase(tenant=codes.get(c["tenant_id"]), **{
            k: v for k, v in c.items() if k != "tenant_id"}) for c in plan.blocked])


# ---- inbox -----------------------------------------------------------------------------------


@router.get("/api/v1/me/tasks", response_model=Page[TaskOut],
            summary="The open cases you may act on now, across every unit you hold grants "
            "in, most urgent first")
async def my_tasks(principal: CurrentPrincipal, session: ScopedSession,
                   cursor: str | None = None, limit: Limit = DEFAULT_LIMIT,
                   sla: inbox.SlaFilter | None = None,
                   workflow: Annotated[str | None, Query(max_length=64)] = None,
                   tenant: Annotated[str | None, Query(max_length=64)] = None,
                   ) -> Page[TaskOut]:
    within: Tenant | None = None
    if tenant is not None:
        within = await get_by_code(session, tenant)
        if within is None:
            return Page[TaskOut](items=[], next_cursor=None)
    after = decode_cursor(cursor, datetime, uuid.UUID)
    now = utcnow()
    standing_in = await delegations.delegators(session, principal, now)
    page, more = await inbox.tasks(
        session, principal, now=now, sla=sla, workflow=workflow, tenant=within,
        after=[after[0].isoformat(), str(after[1])] if after else None, limit=limit,
        standing_in=standing_in)
    codes = await tenant_codes(session, {t.case.tenant_id for t in page})
    me = str(principal.id)
    items = [TaskOut(
        case=t.case.id, tenant=codes.get(t.case.tenant_id, ""), form=t.case.form_key,
        workflow=t.case.workflow_key, state=_state_out(t.workflow, t.case.state),
        assignee=t.case.assignee, claimed_by_me=t.case.assignee == me,
        escalated=t.escalated,
        sla=_worst(t.case, now),
        due_at=t.case.state_due_at or t.case.case_due_at,
        actions=[a.name for a in t.actions], updated_at=t.case.updated_at) for t in page]
    next_cursor = encode_cursor([page[-1].urgency.isoformat(), page[-1].case.id]) if (
        more and page) else None
    return Page[TaskOut](items=items, next_cursor=next_cursor)


# ---- delegation while absent -----------------------------------------------------------------


def _delegation_out(row: Delegation, now: datetime) -> DelegationOut:
    return DelegationOut(id=row.id, delegator=row.delegator, delegate=row.delegate,
                         starts_at=row.starts_at, ends_at=row.ends_at, reason=row.reason,
                         ended_at=row.revoked_at, created_at=row.created_at,
                         active=row.revoked_at is None and row.starts_at <= now < row.ends_at)


@router.post("/api/v1/me/delegations", status_code=201, response_model=DelegationOut,
             summary="Let a colleague act on cases in your stead for a period")
async def delegate(principal: CurrentPrincipal, body: DelegationIn,
                   session: ScopedSession) -> DelegationOut:
    row = await delegations.create(session, principal=principal, delegate=body.delegate,
                                   starts_at=body.starts_at, ends_at=body.ends_at,
                                   reason=body.reason)
    return _delegation_out(row, utcnow())


@router.get("/api/v1/me/delegations", response_model=list[DelegationOut],
            summary="Delegations you gave or received, newest first")
async def my_delegations(principal: CurrentPrincipal,
                         session: ScopedSession) -> list[DelegationOut]:
    now = utcnow()
    return [_delegation_out(row, now) for row in await delegations.mine(session, principal)]


@router.post("/api/v1/me/delegations/{delegation_id}/end", response_model=DelegationOut,
             summary="End a delegation you gave, now")
async def end_delegation(principal: CurrentPrincipal, delegation_id: uuid.UUID,
                         session: ScopedSession) -> DelegationOut:
    row = await delegations.end(session, principal=principal, delegation_id=delegation_id)
    return _delegation_out(row, utcnow())
