"""Writing and verifying the audit chain.

Each tenant has its own chain, so tenants never wait on each other's audit writes. Appends to
one tenant's chain are serialised by a transaction-scoped advisory lock on PostgreSQL (and by
the database lock on SQLite), taken as late as possible: services record audit entries as the
last step of their unit of work.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditRecord, tenant_lock_key
from app.core.db import advisory_xact_lock, utcnow
from app.core.requests import current_request_id

GENESIS = "0" * 64
_HEADS_KEY = "audit_heads"


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def record_hash(record: AuditRecord) -> str:
    body = {
        "tenant_id": str(record.tenant_id),
        "seq": record.seq,
        "at": _timestamp(record.at),
        "actor": record.actor,
        "action": record.action,
        "resource_type": record.resource_type,
        "resource_id": record.resource_id,
        "request_id": record.request_id,
        "before": record.before,
        "after": record.after,
        "prev_hash": record.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _head(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, str]:
    heads: dict[uuid.UUID, tuple[int, str]] = session.info.setdefault(_HEADS_KEY, {})
    if tenant_id in heads:
        return heads[tenant_id]
    await advisory_xact_lock(session, tenant_lock_key(tenant_id))
    row = (
        await session.execute(
            select(AuditRecord.seq, AuditRecord.hash)
            .where(AuditRecord.tenant_id == tenant_id)
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        )
    ).first()
    head = (row[0], row[1]) if row else (0, GENESIS)
    heads[tenant_id] = head
    return head


def chain_heads(session: AsyncSession) -> dict[uuid.UUID, tuple[int, str]]:
    """The session's cached chain heads, to restore with :func:`restore_chain_heads` when a
    savepoint that recorded entries is rolled back."""
    return dict(session.info.get(_HEADS_KEY, {}))


def restore_chain_heads(session: AsyncSession, heads: dict[uuid.UUID, tuple[int, str]]) -> None:
    session.info[_HEADS_KEY] = heads


async def record(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRecord:
    seq, prev_hash = await _head(session, tenant_id)
    entry = AuditRecord(
        tenant_id=tenant_id,
        seq=seq + 1,
        at=utcnow(),
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        request_id=current_request_id(),
        before=before,
        after=after,
        prev_hash=prev_hash,
    )
    entry.hash = record_hash(entry)
    session.add(entry)
    session.info[_HEADS_KEY][tenant_id] = (entry.seq, entry.hash)
    return entry


@dataclass
class ChainReport:
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


async def _stream(session: AsyncSession, tenant_id: uuid.UUID) -> AsyncIterator[AuditRecord]:
    stmt = (
        select(AuditRecord)
        .where(AuditRecord.tenant_id == tenant_id)
        .order_by(AuditRecord.seq)
        .execution_options(yield_per=500)
    )
    result = await session.stream_scalars(stmt)
    async for entry in result:
        yield entry


async def verify_chain(session: AsyncSession, tenant_id: uuid.UUID) -> ChainReport:
    """Walk the tenant's chain and report the first record that does not link or hash."""
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    async for entry in _stream(session, tenant_id):
        if entry.seq != expected_seq:
            return ChainReport(checked, expected_seq - 1, prev_hash, expected_seq,
                               f"record {expected_seq} is missing (next is {entry.seq})")
        if entry.prev_hash != prev_hash:
            return ChainReport(checked, expected_seq - 1, prev_hash, entry.seq,
                               "prev_hash does not match the previous record")
        if record_hash(entry) != entry.hash:
            return ChainReport(checked, expected_seq - 1, prev_hash, entry.seq,
                               "the record's content does not match its hash")
        checked += 1
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return ChainReport(checked, expected_seq - 1, prev_hash)


async def list_records(
    session: AsyncSession, tenant_id: uuid.UUID, *, after_seq: int | None, limit: int
) -> list[AuditRecord]:
    stmt = (
        select(AuditRecord)
        .where(AuditRecord.tenant_id == tenant_id)
        .order_by(AuditRecord.seq)
        .limit(limit)
    )
    if after_seq is not None:
        stmt = stmt.where(AuditRecord.seq > after_seq)
    return list((await session.execute(stmt)).scalars().all())
