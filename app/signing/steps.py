"""Signatures at workflow steps: an action that needs one waits for it, then completes at once.

Taking such an action runs every check of the engine first (role, claim, fields, comment,
guard), then builds the signed document (:mod:`app.signing.canonical`), asks the tenant's
provider to sign its digest, and:

* if the signature comes back at once (a server-side seal), verifies it and, when valid,
  stores the action with the signature in the same transaction (200);
* if the provider answers with a transaction (a remote CA waiting on the user's phone, a
  plug-in on the user's machine), records a *pending* signature and answers 202; the case
  does not change;
* when the signature arrives later, verifies it against the document recorded at the start,
  checks the case has not changed since (same revision), re-runs the engine with the same
  request, and stores the action, the evidence and the history entry in one transaction.

An invalid, expired or mismatched signature leaves the case unchanged: the signature row
records why (``failed``/``expired``) and the API answers with the reasons.
"""

from __future__ import annotations

import base64
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases import service as cases
from app.cases.models import Case, CaseHistory
from app.core import metrics
from app.core.db import Database, utcnow
from app.core.problems import Problem, not_found
from app.forms.models import Attachment, Submission
from app.identity import principals
from app.identity.callers import Principal
from app.identity.models import User
from app.signing import canonical, providers, receipts, verification
from app.signing import service as configs
from app.signing.models import CaseSignature
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope, platform_read

log = logging.getLogger("nentang.signing")


def _problem(status: int, code: str, en: str, vi: str, **extra: Any) -> Problem:
    return Problem(status, code, vi, en, detail=en, **extra)


async def signer_of(session: AsyncSession, principal: Principal) -> providers.Signer:
    attributes: dict[str, str] = {"principal_id": str(principal.id)}
    if principal.kind == "client":
        attributes["client_id"] = principal.client_id
    else:
        async with platform_read(session, "signer attributes"):
            user = (await session.execute(select(User).where(
                User.tenant_id == principal.home_tenant_id,
                User.principal_id == principal.id))).scalar_one_or_none()
        if user is not None:
            attributes.update({k: v for k, v in (("username", user.username),
                                                 ("external_id", user.external_id),
                                                 ("email", user.email)) if v})
    return providers.Signer(str(principal.id), principal.name, attributes)


async def _attachments(session: AsyncSession, case: Case) -> list[canonical.AttachedFile]:
    rows = (await session.execute(select(Attachment).where(
        Attachment.tenant_id == case.tenant_id,
        Attachment.submission_id == case.submission_id))).scalars()
    return [canonical.AttachedFile(a.field, a.filename, a.sha256) for a in rows]


async def _document(session: AsyncSession, prepared: cases.Prepared, *, requested_by: str,
                    requested_at: datetime) -> dict[str, Any]:
    case, outcome = prepared.case, prepared.outcome
    form_version = (await session.execute(select(Submission.form_version).where(
        Submission.tenant_id == case.tenant_id, Submission.id == case.submission_id))
    ).scalar_one()
    return canonical.signed_document(
        case_id=str(case.id), tenant=prepared.tenant.code, action=outcome.action,
        from_state=outcome.source, to_state=outcome.target if outcome.moved else None,
        form=(case.form_key, form_version), workflow=(case.workflow_key, case.workflow_version),
        data=outcome.case.data, attachments=await _attachments(session, case),
        comment=prepared.comment, requested_by=requested_by, requested_at=requested_at)


def content_of(row: CaseSignature) -> bytes:
    """The exact bytes the signature covers."""
    return _content(row.document)


def _content(document: dict[str, Any]) -> bytes:
    try:
        return canonical.canonical_bytes(document)
    except canonical.NotSignable as exc:
        raise _problem(422, "data-not-signable", "The case data holds a value that canonical "
                       f"JSON cannot represent exactly ({exc}).", "Dữ liệu hồ sơ có giá trị "
                       "không thể chuẩn hóa để ký.") from None


@dataclass(frozen=True)
class Begun:
    """What taking an action led to: the case changed, or a signature to wait for."""

    case: Case | None
    signature: CaseSignature | None


async def take_action(session: AsyncSession, *, principal: Principal, tenant: Tenant,
                      case_id: uuid.UUID, action: str, if_match: str | None,
                      given: cases.ActionInput, public_url: str) -> Begun:
    """Take an action; one that needs a signature asks for it first (see the module).
    ``public_url`` is where the platform is reached, for a provider's callback."""
    prepared = await cases.prepare_action(session, principal=principal, tenant=tenant,
                                          case_id=case_id, action=action, if_match=if_match,
                                          given=given, signed=True)
    if not prepared.workflow.actions[action].needs_signature:
        return Begun(await cases.commit_action(session, prepared), None)
    return await _begin(session, prepared, principal=principal, tenant=tenant, given=given,
                        public_url=public_url)


def callback_path(tenant: str, signature_id: uuid.UUID | str) -> str:
    return f"/callbacks/signing/{tenant}/{signature_id}"


async def _begin(session: AsyncSession, prepared: cases.Prepared, *, principal: Principal,
                 tenant: Tenant, given: cases.ActionInput, public_url: str) -> Begun:
    action, case_id = prepared.outcome.action, prepared.case.id
    setup = await configs.effective(session, tenant)
    if setup is None:
        raise _problem(409, "signing-not-configured", f"Action '{action}' needs a digital "
                       "signature, and no signing provider is configured for this unit or "
                       "above it.", "Chưa cấu hình ký số cho đơn vị.")
    if prepared.workflow.actions[action].receipt and not setup.row.policy.get("seal"):
        raise _problem(409, "seal-not-configured", f"Action '{action}' issues a sealed receipt, "
                       "and the unit's signing set-up has no seal.",
                       "Chưa cấu hình con dấu để đóng dấu biên nhận.")
    now = utcnow()
    document = await _document(session, prepared, requested_by=str(principal.id),
                               requested_at=now)
    content = _content(document)
    signer = await signer_of(session, principal)
    row = CaseSignature(
        tenant_id=tenant.id, id=uuid.uuid4(), case_id=case_id, action=action,
        status="pending", provider=setup.row.provider, config_tenant_id=setup.row.tenant_id,
        case_revision=prepared.case.revision, document=document,
        digest=canonical.digest(content).hex(), requested_by=principal.actor,
        requested_by_id=str(principal.id), requested_at=now,
        request={"fields": dict(given.fields), "comment": given.comment, "seat": given.seat,
                 "signer": signer.attributes, "home": str(principal.home_tenant_id),
                 "format": setup.format})
    request = providers.SignRequest(
        request_id=str(row.id), digest=canonical.digest(content),
        digest_algorithm=canonical.DIGEST_ALGORITHM, signer=signer,
        label=f"{prepared.case.workflow_key}/{action} {case_id}", format=setup.format,
        callback_url=public_url.rstrip("/") + callback_path(tenant.code, row.id))
    try:
        started = await setup.provider.start(setup.row.config, request)
    except providers.ProviderUnavailable as exc:
        metrics.signature("unavailable", setup.row.provider)
        raise _problem(502, "signing-provider-unavailable", f"The signing provider could not "
                       f"start the signature: {exc}. Nothing was changed; try again.",
                       "Nhà cung cấp ký số không phản hồi; chưa có gì thay đổi.") from None
    if isinstance(started, providers.Pending):
        row.transaction_id, row.expires_at = started.transaction_id, started.expires_at
        row.instructions = dict(started.instructions)
        row.request = {**row.request, "provider_state": dict(started.state)}
        session.add(row)
        await session.flush()
        metrics.signature("pending", setup.row.provider)
        return Begun(None, row)
    verdict = await verification.verify_any(started.signature, content, setup.policy,
                                            moment=now, principal=signer.attributes)
    if not verdict.valid:
        metrics.signature("invalid", setup.row.provider)
        raise _refused_signature(verdict)
    await _complete(row, started.signature, verdict, now, started.transaction_id,
                    setup=setup, receipt=prepared.workflow.actions[action].receipt)
    session.add(row)
    await session.flush()
    return Begun(await cases.commit_action(session, prepared, signature_ref=str(row.id)), row)


def _refused_signature(verdict: verification.Verdict) -> Problem:
    return Problem(422, "signature-invalid", "Chữ ký số không hợp lệ", "Invalid signature",
                   detail="; ".join(r.en for r in verdict.reasons),
                   errors=[{"pointer": "/signature", **r.as_dict()} for r in verdict.reasons])


async def _complete(row: CaseSignature, cms: bytes, verdict: verification.Verdict,
                    now: datetime, transaction_id: str | None, *, setup: configs.Effective | None,
                    receipt: bool) -> None:
    """Record the evidence, and seal the receipt of a step that issues a document."""
    row.status, row.completed_at, row.signature = "completed", now, cms
    metrics.signature("signed", row.provider)
    row.verification = verdict.as_dict()
    row.chain = [base64.b64encode(c).decode() for c in verdict.chain]
    if transaction_id and not row.transaction_id:
        row.transaction_id = transaction_id
    seal = setup.row.policy.get("seal") if setup else None
    if receipt and seal:
        row.receipt = await receipts.issue(row.document, _content(row.document), cms,
                                           row.digest, verdict.signer_subject, now, seal)


def _fail(row: CaseSignature, code: str, reason: str, *, status: str = "failed",
          verdict: verification.Verdict | None = None, cms: bytes | None = None) -> None:
    row.status, row.completed_at = status, utcnow()
    row.failure = {"code": code, "reason": reason}
    metrics.signature_failed(row.provider, status, code)
    if verdict is not None:
        row.verification = verdict.as_dict()
    if cms is not None:
        row.signature = cms


# ---- completing a pending signature -----------------------------------------------------------


async def get(session: AsyncSession, tenant: Tenant, case_id: uuid.UUID,
              signature_id: uuid.UUID, *, lock: bool = False) -> CaseSignature:
    statement = select(CaseSignature).where(
        CaseSignature.tenant_id == tenant.id, CaseSignature.case_id == case_id,
        CaseSignature.id == signature_id)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).scalar_one_or_none()
    if row is None:
        raise not_found("signature", str(signature_id))
    return row


@dataclass(frozen=True)
class Completion:
    signature: CaseSignature
    case: Case | None
    problem: Problem | None  # why the signature was refused (the row records it too)


async def complete(session: AsyncSession, *, principal: Principal, tenant: Tenant,
                   case_id: uuid.UUID, signature_id: uuid.UUID, cms: bytes) -> Completion:
    """A signature for a pending request arrives from the user's client (a plug-in)."""
    case = await cases.get(session, tenant, case_id, lock=True)
    row = await get(session, tenant, case_id, signature_id, lock=True)
    if row.requested_by_id != str(principal.id):
        raise _problem(403, "not-the-signer", "Only the official who asked for this signature "
                       "may send it.", "Chỉ người yêu cầu ký mới được gửi chữ ký này.")
    if row.status != "pending":
        raise _problem(409, "signature-not-pending", f"This signature is {row.status}.",
                       "Yêu cầu ký không còn chờ.")
    return await _finish(session, principal=principal, tenant=tenant, case=case, row=row,
                         cms=cms)


async def _finish(session: AsyncSession, *, principal: Principal, tenant: Tenant, case: Case,
                  row: CaseSignature, cms: bytes) -> Completion:
    """Verify ``cms`` for the locked pending ``row`` and, when it holds and the case is as
    it was, take the action with it, all in the caller's transaction."""
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        _fail(row, "expired", "The time to sign ran out.", status="expired")
        return Completion(row, None, _problem(409, "signature-expired", "The time to sign "
                                              "ran out; take the action again.",
                                              "Đã hết thời hạn ký."))
    if case.revision != row.case_revision:
        _fail(row, "case-changed", "The case changed after the signature was asked for.")
        return Completion(row, None, _problem(409, "case-changed", "The case changed after the "
                                              "signature was asked for; take the action again.",
                                              "Hồ sơ đã thay đổi sau khi yêu cầu ký."))
    setup = await configs.effective(session, tenant)
    content = _content(row.document)
    # The signer is matched as they were known when the signature was asked for.
    verdict = await verification.verify_any(
        cms, content, setup.policy if setup else configs.policy_of({}), moment=now,
        principal=row.request.get("signer") or {})
    if not verdict.valid:
        _fail(row, "signature-invalid", "; ".join(r.en for r in verdict.reasons),
              verdict=verdict, cms=cms)
        return Completion(row, None, _refused_signature(verdict))
    given = cases.ActionInput(fields=row.request.get("fields") or {},
                              comment=row.request.get("comment"), seat=row.request.get("seat"))
    try:
        prepared = await cases.prepare_action(
            session, principal=principal, tenant=tenant, case_id=case.id, action=row.action,
            if_match=cases.etag(case), given=given, signed=True)
    except Problem as refused:  # the signer may no longer take it (a grant was revoked)
        _fail(row, refused.code, refused.detail or refused.title_en, verdict=verdict, cms=cms)
        return Completion(row, None, refused)
    again = await _document(session, prepared, requested_by=row.document["requested_by"],
                            requested_at=datetime.fromisoformat(row.document["requested_at"]))
    if canonical.digest(_content(again)).hex() != row.digest:
        _fail(row, "case-changed", "What the action would store differs from what was signed.",
              verdict=verdict, cms=cms)
        return Completion(row, None, _problem(409, "case-changed", "What the action would "
                                              "store now differs from what was signed.",
                                              "Dữ liệu đã ký khác dữ liệu sẽ lưu."))
    await _complete(row, cms, verdict, now, None, setup=setup,
                    receipt=prepared.workflow.actions[row.action].receipt)
    await session.flush()
    return Completion(row, await cases.commit_action(session, prepared,
                                                     signature_ref=str(row.id)), None)


# ---- a remote provider's answer: a callback, or the worker's polling --------------------------


async def _requester(session: AsyncSession, row: CaseSignature) -> Principal:
    """The official who asked, as they are now, with their own scope applied to the session
    (the platform acts for them; a revoked grant means the action is refused)."""
    principal = await principals.load(session, uuid.UUID(row.requested_by_id),
                                       uuid.UUID(row.request["home"]), client_id="")
    await apply_scope(session, principal.scope())
    return principal


async def _settle(session: AsyncSession, row: CaseSignature,
                  outcome: providers.Signed | providers.Pending | providers.Failed) -> str:
    """Apply a provider's outcome to a pending row (under the platform scope)."""
    if isinstance(outcome, providers.Pending):
        if row.expires_at is not None and row.expires_at <= utcnow():
            _fail(row, "expired", "The time to sign ran out.", status="expired")
        return row.status
    if isinstance(outcome, providers.Failed):
        _fail(row, outcome.code, outcome.reason,
              status="expired" if outcome.code == "expired" else "failed")
        return row.status
    tenant = (await session.execute(select(Tenant).where(Tenant.id == row.tenant_id))
              ).scalar_one()
    try:
        principal = await _requester(session, row)
    except Problem as gone:
        await apply_scope(session, TenantScope.platform("signing"))
        _fail(row, gone.code, "The official who asked can no longer act.")
        return row.status
    try:
        case = await cases.get(session, tenant, row.case_id, lock=True)
        await _finish(session, principal=principal, tenant=tenant, case=case, row=row,
                      cms=outcome.signature)
    except Problem as refused:  # the official can no longer see or act on the case
        await apply_scope(session, TenantScope.platform("signing"))
        _fail(row, refused.code, "The official who asked can no longer act on the case.")
    return row.status


async def callback(session: AsyncSession, *, tenant_code: str, signature_id: uuid.UUID,
                   headers: dict[str, str], body: bytes) -> str:
    """A provider reports the outcome of a transaction. Unauthenticated, stale or foreign
    callbacks are refused (401) before anything is read or written; a callback about a
    signature already settled changes nothing (a duplicate or a replay)."""
    await apply_scope(session, TenantScope.platform("signing callback"))
    found = (await session.execute(
        select(CaseSignature).join(Tenant, Tenant.id == CaseSignature.tenant_id)
        .where(Tenant.code == tenant_code, CaseSignature.id == signature_id)
        .with_for_update(of=CaseSignature))).scalar_one_or_none()
    if found is None:
        raise not_found("signature", str(signature_id))
    tenant = (await session.execute(select(Tenant).where(Tenant.id == found.tenant_id))
              ).scalar_one()
    setup = await configs.effective(session, tenant)
    handler = getattr(setup.provider, "callback", None) if setup else None
    if setup is None or handler is None or setup.row.provider != found.provider:
        raise _problem(404, "no-callbacks", "This signature's provider takes no callbacks.",
                       "Nhà cung cấp này không gọi lại.")
    try:
        outcome = await handler(setup.row.config, headers, body, found.transaction_id or "",
                                found.request.get("provider_state", {}))
    except providers.CallbackRejected as exc:
        raise Problem(401, "callback-rejected", "Lời gọi lại không hợp lệ", "Callback rejected",
                      detail=str(exc)) from None
    if found.status != "pending":
        return found.status
    return await _settle(session, found, outcome)


async def _poll(db: Database) -> dict[str, int]:
    """Each pending row settled in its own transaction."""
    polled = [name for name, p in providers.available().items() if p.polled]
    now = utcnow()
    async with db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("signing poll"))
        keys = [(r.tenant_id, r.id) for r in (await session.execute(
            select(CaseSignature).where(
                CaseSignature.status == "pending",
                CaseSignature.provider.in_(polled) | (CaseSignature.expires_at <= now)))
        ).scalars()]
    counts: dict[str, int] = {}
    for tenant_id, signature_id in keys:
        try:
            status = await _poll_one(db, tenant_id, signature_id, polled, now)
        except Exception:  # one bad row must not stop the others
            log.exception("signature %s could not be settled", signature_id)
            continue
        if status is not None:
            counts[status] = counts.get(status, 0) + 1
    return counts


async def _poll_one(db: Database, tenant_id: uuid.UUID, signature_id: uuid.UUID,
                    polled: list[str], now: datetime) -> str | None:
    async with db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("signing poll"))
        row = (await session.execute(select(CaseSignature).where(
            CaseSignature.tenant_id == tenant_id, CaseSignature.id == signature_id)
            .with_for_update())).scalar_one()
        if row.status != "pending":
            return None
        tenant = (await session.execute(select(Tenant).where(Tenant.id == tenant_id))
                  ).scalar_one()
        setup = await configs.effective(session, tenant)
        outcome: providers.Signed | providers.Pending | providers.Failed
        if row.provider not in polled:  # a plug-in's signature never came
            outcome = providers.Pending(row.transaction_id or "", now)
        elif setup is None or setup.row.provider != row.provider:
            outcome = providers.Failed("unconfigured", "The unit's signing set-up changed "
                                       "while the signature was awaited.")
        else:
            try:
                outcome = await setup.provider.status(setup.row.config,
                                                      row.transaction_id or "",
                                                      row.request.get("provider_state", {}))
            except providers.ProviderUnavailable:
                return None  # asked again next round
        return await _settle(session, row, outcome)


async def poll(db: Database) -> dict[str, int]:
    """Ask the remote providers about every pending transaction, and expire requests whose
    time ran out (the worker's round). A row that cannot be settled is logged and asked
    about again next round; it never stops the others."""
    try:
        return await _poll(db)
    except Exception:
        log.exception("polling pending signatures failed")
        return {}


# ---- reading and re-checking ---------------------------------------------------------------------


async def listed(session: AsyncSession, tenant: Tenant, case_id: uuid.UUID) -> list[CaseSignature]:
    return list((await session.execute(select(CaseSignature).where(
        CaseSignature.tenant_id == tenant.id, CaseSignature.case_id == case_id)
        .order_by(CaseSignature.requested_at, CaseSignature.id))).scalars())


@dataclass(frozen=True)
class Recheck:
    verdict: verification.Verdict
    document_intact: bool
    matches_case: bool
    mismatches: list[str]
    receipt_intact: bool | None


async def recheck(session: AsyncSession, tenant: Tenant, case: Case,
                  row: CaseSignature) -> Recheck:
    """Verify a completed signature again, as of when it arrived, and compare what it signed
    with the case as stored now: the document must still give the signed digest, the
    history must record the signed step, and each signed field must still hold its signed
    value unless a later recorded action changed it; the files must be the signed ones."""
    if row.status != "completed" or row.signature is None or row.completed_at is None:
        raise _problem(409, "signature-not-completed", f"This signature is {row.status}; only "
                       "a completed one can be re-checked.", "Chữ ký chưa hoàn tất.")
    content = _content(row.document)
    intact = canonical.digest(content).hex() == row.digest
    setup = await configs.effective(session, tenant)
    verdict = await verification.verify_any(
        row.signature, content, setup.policy if setup else configs.policy_of({}),
        moment=row.completed_at)
    mismatches: list[str] = []
    if not intact:
        mismatches.append("/document")
    history = list((await session.execute(select(CaseHistory).where(
        CaseHistory.tenant_id == case.tenant_id, CaseHistory.case_id == case.id)
        .order_by(CaseHistory.seq))).scalars())
    step = next((h for h in history if h.signature_ref == str(row.id)), None)
    document = row.document
    if step is None or step.action != document["action"] or step.from_state != document[
            "from_state"] or step.to_state != document["to_state"]:
        mismatches.append("/history")
    if str(case.id) != document["case"]:
        mismatches.append("/case")
    later = {key for h in history if step is not None and h.seq > step.seq
             for key in (h.changes or {})}
    for key, value in document["data"].items():
        if key not in later and case.data.get(key) != value:
            mismatches.append(f"/data/{key}")
    for key in set(case.data) - set(document["data"]) - later:
        mismatches.append(f"/data/{key}")
    files = sorted((a.field, a.sha256) for a in await _attachments(session, case))
    if files != sorted((a["field"], a["sha256"]) for a in document["attachments"]):
        mismatches.append("/attachments")
    receipt_intact = None if row.receipt is None else await receipts.intact(
        row.receipt, (setup.policy if setup else configs.policy_of({})).trust_anchors,
        row.completed_at)
    return Recheck(verdict, intact, not mismatches, mismatches, receipt_intact)
