from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service
from app.audit.models import AuditRecord
from app.audit.schemas import AuditRecordOut, ChainVerification
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, split_page
from app.identity.auth import ScopedSession
from app.identity.dependencies import Access, Requires
from app.identity.permissions import Permission

router = APIRouter(prefix="/api/v1/tenants/{tenant}/audit", tags=["audit"])
AuditReader = Annotated[Access, Depends(Requires(Permission.AUDIT_READ))]


def _out(code: str, entry: AuditRecord) -> AuditRecordOut:
    return AuditRecordOut(
        tenant=code, seq=entry.seq, at=entry.at, actor=entry.actor, action=entry.action,
        resource_type=entry.resource_type, resource_id=entry.resource_id,
        request_id=entry.request_id, before=entry.before, after=entry.after,
        prev_hash=entry.prev_hash, hash=entry.hash,
    )


@router.get("", response_model=Page[AuditRecordOut],
            summary="The tenant's audit trail, oldest first")
async def list_audit(
    access: AuditReader, session: ScopedSession,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[AuditRecordOut]:
    tenant = access.tenant
    after = decode_cursor(cursor, int)
    rows = await service.list_records(session, tenant.id, after_seq=after[0] if after else None,
                                      limit=limit + 1)
    page, next_cursor = split_page(rows, limit, lambda r: [r.seq])
    return Page[AuditRecordOut](items=[_out(tenant.code, r) for r in page], next_cursor=next_cursor)


@router.get("/verify", response_model=ChainVerification,
            summary="Recompute the tenant's hash chain and report the first broken link")
async def verify_audit(access: AuditReader, session: ScopedSession) -> ChainVerification:
    tenant = access.tenant
    report = await service.verify_chain(session, tenant.id)
    return ChainVerification(tenant=tenant.code, ok=report.ok, checked=report.checked,
                             head_seq=report.head_seq, head_hash=report.head_hash,
                             broken_seq=report.broken_seq, reason=report.reason)
