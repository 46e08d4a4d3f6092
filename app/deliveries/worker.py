"""Sending due deliveries, at least once, in order per stream.

A worker *claims* a batch by leasing it (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers
take different rows). Only the first pending delivery of each stream (one case, one target)
is claimable, so a stream's events go out in order however many workers run. Requests are
sent outside any transaction, concurrently, and the answers recorded in one commit, each
only if the lease is still the worker's.

A worker killed mid-send leaves a lease that expires; another worker then sends the delivery
again, with the same ``webhook-id``, which is why receivers drop duplicates by it. A failed
attempt is retried after an exponential backoff with full jitter (honouring ``Retry-After``),
until ``max_attempts``, when the delivery goes ``dead`` for an admin to inspect and replay.
A target the platform may not reach, or a ``410 Gone``, is dead at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.config import Settings
from app.core.db import Database, on_postgresql, utcnow
from app.core.outbox import OutboxEvent
from app.deliveries import signing, targets
from app.deliveries.models import Delivery
from app.deliveries.service import signing_keys
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope

log = logging.getLogger("nentang.worker")
MAX_BACKOFF = timedelta(hours=1)
# Concurrent requests per worker; a slow receiver holds one slot, not the whole batch.
CONCURRENCY = 16


@dataclass(frozen=True)
class Options:
    max_attempts: int = 10
    timeout_seconds: float = 10.0
    backoff_seconds: float = 30.0
    allow_private_targets: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        return cls(max_attempts=settings.delivery_max_attempts,
                   timeout_seconds=settings.delivery_timeout_seconds,
                   backoff_seconds=settings.delivery_backoff_seconds,
                   allow_private_targets=settings.delivery_allow_private_targets)


@dataclass
class Sent:
    """What a run did, for progress output and tests."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Attempt:
    """One send's result: delivered, or why not and whether trying again can help."""

    delivered: bool
    status: int | None = None
    error: str | None = None
    final: bool = False
    retry_after: timedelta | None = None


def backoff(attempts: int, options: Options, retry_after: timedelta | None = None,
            rng: Callable[[], float] = random.random) -> timedelta:
    """The wait after the ``attempts``-th failure: base × 2^(n-1), capped at an hour, with
    full jitter over its upper half; never shorter than the receiver's ``Retry-After``."""
    ceiling = min(timedelta(seconds=options.backoff_seconds) * 2 ** (attempts - 1), MAX_BACKOFF)
    wait: timedelta = ceiling * (0.5 + rng() / 2)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_BACKOFF))
    return wait


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value.strip()))
    try:
        return max(parsedate_to_datetime(value) - now, timedelta(0))
    except (TypeError, ValueError):
        return None


async def _platform(session: AsyncSession) -> None:
    await apply_scope(session, TenantScope.platform("worker"))


async def claim(db: Database, owner: str, *, now: datetime, batch: int,
                lease: timedelta) -> list[uuid.UUID]:
    """Lease up to ``batch`` due deliveries that head their stream to ``owner``."""
    earlier = aliased(Delivery)
    blocked = exists().where(
        earlier.tenant_id == Delivery.tenant_id, earlier.ordering_key == Delivery.ordering_key,
        earlier.target == Delivery.target, earlier.status == "pending",
        or_(earlier.aggregate_seq < Delivery.aggregate_seq,
            and_(earlier.aggregate_seq == Delivery.aggregate_seq,
                 earlier.ordinal < Delivery.ordinal)))
    async with db.sessionmaker() as session, session.begin():
        await _platform(session)
        due = (select(Delivery.id)
               .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                      or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
                      ~blocked)
               .order_by(Delivery.next_attempt_at).limit(batch))
        if on_postgresql(session):
            due = due.with_for_update(skip_locked=True)
        ids = list((await session.execute(due)).scalars())
        if ids:
            await session.execute(
                update(Delivery).where(Delivery.id.in_(ids))
                .values(lease_owner=owner, lease_until=now + lease)
                .execution_options(synchronize_session=False))
    return ids


@dataclass(frozen=True)
class Outgoing:
    delivery_id: uuid.UUID
    target: str
    message_id: str
    body: bytes
    keys: tuple[str, ...]


async def _outgoing(db: Database, ids: list[uuid.UUID], now: datetime) -> list[Outgoing]:
    async with db.sessionmaker() as session, session.begin():
        await _platform(session)
        rows = (await session.execute(
            select(Delivery, OutboxEvent, Tenant)
            .join(OutboxEvent, (OutboxEvent.tenant_id == Delivery.tenant_id)
                  & (OutboxEvent.id == Delivery.event_id))
            .join(Tenant, Tenant.id == Delivery.tenant_id)
            .where(Delivery.id.in_(ids)))).all()
        keys: dict[str, tuple[str, ...]] = {}
        for _, _, tenant in rows:
            if tenant.path not in keys:
                keys[tenant.path] = tuple(await signing_keys(session, tenant.path, now))
    return [Outgoing(delivery.id, delivery.target, str(event.id), _body(event, tenant),
                     keys[tenant.path]) for delivery, event, tenant in rows]


def _body(event: OutboxEvent, tenant: Tenant) -> bytes:
    """A Standard Webhooks payload. It says what happened and where, never the case's data:
    the receiver reads that through the API with its own credentials and permissions."""
    return json.dumps({
        "type": event.topic,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {"event": str(event.id), "tenant": {"id": str(tenant.id), "code": tenant.code},
                 **event.payload},
    }, separators=(",", ":"), ensure_ascii=False).encode()


async def send(client: httpx.AsyncClient, outgoing: Outgoing, options: Options,
               now: datetime) -> Attempt:
    """POST one delivery; the response body is never read (a receiver cannot flood us)."""
    try:
        await targets.check(outgoing.target, allow_private=options.allow_private_targets)
    except targets.ForbiddenTarget as exc:
        return Attempt(False, error=str(exc), final=True)
    except OSError as exc:
        return Attempt(False, error=str(exc))
    if not outgoing.keys:
        return Attempt(False, error="no webhook signing key: an admin of this unit or one "
                       "above must create one (POST /api/v1/tenants/{tenant}/webhook-secrets)")
    stamp = int(time.time())  # the real moment of sending: the receiver checks it for replay
    headers = signing.headers(outgoing.keys, outgoing.message_id, stamp, outgoing.body)
    try:
        async with client.stream("POST", outgoing.target, content=outgoing.body,
                                 headers=headers) as response:
            status = response.status_code
            retry_after = _retry_after(response.headers.get("retry-after"), now)
    except httpx.TimeoutException:
        return Attempt(False, error=f"no answer within {options.timeout_seconds:g} s")
    except httpx.HTTPError as exc:
        return Attempt(False, error=f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return Attempt(True, status=status)
    if 300 <= status < 400:
        return Attempt(False, status=status, error=f"redirect ({status}) not followed")
    return Attempt(False, status=status, error=f"answered {status}", final=status == 410,
                   retry_after=retry_after)


async def record(db: Database, owner: str, results: list[tuple[uuid.UUID, Attempt]], *,
                 now: datetime, options: Options, result: Sent) -> None:
    """Store each answer if the lease is still ours (a late answer after the lease ran out
    is dropped: another worker owns the delivery now)."""
    async with db.sessionmaker() as session, session.begin():
        await _platform(session)
        rows = {d.id: d for d in (await session.execute(
            select(Delivery).where(Delivery.id.in_([i for i, _ in results]))
            .with_for_update())).scalars()}
        for delivery_id, attempt in results:
            delivery = rows.get(delivery_id)
            if delivery is None or delivery.lease_owner != owner or delivery.status != "pending":
                continue
            delivery.attempts += 1
            delivery.last_status, delivery.last_error = attempt.status, attempt.error
            delivery.lease_owner = delivery.lease_until = None
            delivery.updated_at = now
            if attempt.delivered:
                delivery.status, delivery.delivered_at = "delivered", now
                result.delivered += 1
            elif attempt.final or delivery.attempts >= options.max_attempts:
                delivery.status = "dead"
                result.dead += 1
                log.warning("delivery %s is dead after %d attempts: %s", delivery_id,
                            delivery.attempts, attempt.error)
            else:
                delivery.next_attempt_at = now + backoff(delivery.attempts, options,
                                                         attempt.retry_after)
                result.failed += 1


async def run_once(db: Database, owner: str, *, options: Options,
                   client: httpx.AsyncClient | None = None, batch: int = 100,
                   lease: timedelta | None = None,
                   clock: Callable[[], datetime] = utcnow) -> Sent:
    """Send every delivery due now, batch by batch, until none is left."""
    result = Sent()
    lease = lease or timedelta(seconds=options.timeout_seconds * 3 + 30)
    own_client = client is None
    http = client or new_client(options)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(outgoing: Outgoing, now: datetime) -> tuple[uuid.UUID, Attempt]:
        async with gate:
            return outgoing.delivery_id, await send(http, outgoing, options, now)

    try:
        while True:
            now = clock()
            ids = await claim(db, owner, now=now, batch=batch, lease=lease)
            if not ids:
                return result
            result.claimed += len(ids)
            outgoing = await _outgoing(db, ids, now)
            answers = await asyncio.gather(*(one(o, now) for o in outgoing))
            await record(db, owner, list(answers), now=clock(), options=options,
                         result=result)
    finally:
        if own_client:
            await http.aclose()


def new_client(options: Options) -> httpx.AsyncClient:
    """Redirects are never followed: a 3xx is a failed attempt, not a hop elsewhere."""
    return httpx.AsyncClient(follow_redirects=False, timeout=options.timeout_seconds,
                             headers={"user-agent": "nentang-webhooks"}, trust_env=False)
