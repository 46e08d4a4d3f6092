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
import hashlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.config import Settings
from app.core import metrics
from app.core.db import Database, on_postgresql, utcnow
from app.core.outbox import OutboxEvent
from app.deliveries import transports
from app.deliveries.models import Delivery, DeliveryAttempt, Subscription
from app.deliveries.service import signing_keys
from app.deliveries.transports import Attempt, Message, SendOptions, Transport
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope

log = logging.getLogger("nentang.worker")
MAX_BACKOFF = timedelta(hours=1)
# Message ids (X-Road-Id) are UUIDs derived from the delivery: the same on every attempt.
NAMESPACE = uuid.UUID("6f1c0e0a-4c1b-5d2e-9a47-6e656e74616e")
# Concurrent requests per worker; a slow receiver holds one slot, not the whole batch.
CONCURRENCY = 16


@dataclass(frozen=True)
class Options:
    max_attempts: int = 10
    timeout_seconds: float = 10.0
    backoff_seconds: float = 30.0
    allow_private_targets: bool = False
    lease_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        return cls(max_attempts=settings.delivery_max_attempts,
                   timeout_seconds=settings.delivery_timeout_seconds,
                   backoff_seconds=settings.delivery_backoff_seconds,
                   lease_seconds=max(settings.delivery_lease_seconds,
                                     settings.delivery_timeout_seconds * 2),
                   allow_private_targets=settings.delivery_allow_private_targets)


@dataclass
class Sent:
    """What a run did, for progress output and tests."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int, options: Options, retry_after: timedelta | None = None,
            rng: Callable[[], float] = random.random) -> timedelta:
    """The wait after the ``attempts``-th failure: base × 2^(n-1), capped at an hour, with
    full jitter over its upper half; never shorter than the receiver's ``Retry-After``."""
    # The exponent is capped first: 2^42 × 30 s would overflow a timedelta.
    ceiling = min(timedelta(seconds=options.backoff_seconds) * 2 ** min(attempts - 1, 20),
                  MAX_BACKOFF)
    wait: timedelta = ceiling * (0.5 + rng() / 2)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_BACKOFF))
    return wait


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


async def release(session: AsyncSession, owner: str) -> int:
    """Give up ``owner``'s leases on deliveries it has not sent (a clean stop); returns how
    many. ``session`` is in the platform scope."""
    freed = await session.execute(
        update(Delivery).where(Delivery.lease_owner == owner, Delivery.status == "pending")
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False))
    return getattr(freed, "rowcount", 0) or 0


@dataclass(frozen=True)
class Outgoing:
    delivery_id: uuid.UUID
    tenant_id: uuid.UUID
    transport: Transport | None
    config: Mapping[str, Any]
    message: Message
    missing: str | None = None  # why it cannot be sent at all (its subscription is gone)


def _hook_body(event: OutboxEvent, tenant: Tenant) -> dict[str, Any]:
    """A workflow hook's Standard Webhooks payload: what happened and where, never the
    case's data (the receiver reads it through the API with its own permissions)."""
    return {"type": event.topic,
            "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
            "data": {"event": str(event.id), "tenant": {"id": str(tenant.id),
                                                        "code": tenant.code},
                     **event.payload}}


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def _outgoing(db: Database, ids: list[uuid.UUID], now: datetime) -> list[Outgoing]:
    async with db.sessionmaker() as session, session.begin():
        await _platform(session)
        rows = (await session.execute(
            select(Delivery, OutboxEvent, Tenant, Subscription)
            .join(OutboxEvent, (OutboxEvent.tenant_id == Delivery.tenant_id)
                  & (OutboxEvent.id == Delivery.event_id))
            .join(Tenant, Tenant.id == Delivery.tenant_id)
            .outerjoin(Subscription, (Subscription.tenant_id == Delivery.subscription_tenant_id)
                       & (Subscription.id == Delivery.subscription_id))
            .where(Delivery.id.in_(ids)))).all()
        keys: dict[str, tuple[str, ...]] = {}
        for _, _, tenant, _ in rows:
            if tenant.path not in keys:
                keys[tenant.path] = tuple(await signing_keys(session, tenant.path, now))
    found = []
    for delivery, event, tenant, subscription in rows:
        message = Message(id=str(event.id), message_id=str(uuid.uuid5(NAMESPACE, str(
            delivery.id))), body=_dumps(delivery.body or _hook_body(event, tenant)),
            topic=event.topic, tenant=tenant.code, case=str(delivery.ordering_key),
            keys=keys[tenant.path], channel=str(delivery.subscription_id or "hooks"))
        if delivery.subscription_id is None:  # a workflow hook: a webhook to its URL
            found.append(Outgoing(delivery.id, delivery.tenant_id, transports.get("webhook"),
                                  {"url": delivery.target}, message))
        elif subscription is None:
            found.append(Outgoing(delivery.id, delivery.tenant_id, None, {}, message,
                                  "the subscription was deleted"))
        else:
            transport = transports.get(subscription.transport)
            found.append(Outgoing(delivery.id, delivery.tenant_id, transport,
                                  subscription.target, message,
                                  None if transport else f"the transport "
                                  f"'{subscription.transport}' is not installed"))
    return found


async def _send(client: httpx.AsyncClient, outgoing: Outgoing,
                options: Options) -> tuple[Attempt, int]:
    started = time.monotonic()
    if outgoing.missing is not None or outgoing.transport is None:
        attempt = Attempt(False, error=outgoing.missing or "no transport", final=True)
    else:
        try:
            attempt = await outgoing.transport.send(
                client, outgoing.config, outgoing.message,
                SendOptions(options.timeout_seconds, options.allow_private_targets))
        except Exception as exc:  # a TLS failure, or a transport's own bug: retried, logged
            log.warning("delivery %s: %s failed: %s", outgoing.delivery_id,
                        outgoing.transport.name, exc)
            attempt = Attempt(False, error=f"{type(exc).__name__}: {exc}"[:500])
    return attempt, int((time.monotonic() - started) * 1000)


@dataclass(frozen=True)
class Answer:
    """An attempt with what the audit keeps of it."""

    delivery_id: uuid.UUID
    attempt: Attempt
    service: str = ""
    message_id: str = ""
    body_sha256: str = ""
    latency_ms: int = 0
    transport: str = ""


async def record(db: Database, owner: str, results: list[Answer], *,
                 now: datetime, options: Options, result: Sent) -> None:
    """Store each answer if the lease is still ours (a late answer after the lease ran out
    is dropped: another worker owns the delivery now), with an audit row per exchange."""
    async with db.sessionmaker() as session, session.begin():
        await _platform(session)
        rows = {d.id: d for d in (await session.execute(
            select(Delivery).where(Delivery.id.in_([a.delivery_id for a in results]))
            .with_for_update())).scalars()}
        for answer in results:
            delivery, attempt = rows.get(answer.delivery_id), answer.attempt
            if delivery is None or delivery.lease_owner != owner or delivery.status != "pending":
                continue
            session.add(DeliveryAttempt(
                tenant_id=delivery.tenant_id, id=uuid.uuid4(), delivery_id=delivery.id,
                attempted_at=now, service=answer.service[:2000],
                message_id=answer.message_id, body_sha256=answer.body_sha256,
                status=attempt.status, outcome="delivered" if attempt.delivered else (
                    "dead" if attempt.final or delivery.attempts + 1 >= options.max_attempts
                    else "failed"), error=attempt.error, latency_ms=answer.latency_ms,
                detail=dict(attempt.detail) or None))
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
                log.warning("delivery %s is dead after %d attempts: %s", delivery.id,
                            delivery.attempts, attempt.error)
            else:
                delivery.next_attempt_at = now + backoff(delivery.attempts, options,
                                                         attempt.retry_after)
                result.failed += 1
            metrics.delivery(delivery.status, answer.transport)


async def run_once(db: Database, owner: str, *, options: Options,
                   client: httpx.AsyncClient | None = None, batch: int = 100,
                   lease: timedelta | None = None,
                   clock: Callable[[], datetime] = utcnow,
                   stop: asyncio.Event | None = None) -> Sent:
    """Send every delivery due now, batch by batch, until none is left (or ``stop`` is set:
    then no further batch is claimed)."""
    result = Sent()
    lease = lease or timedelta(seconds=options.lease_seconds)
    own_client = client is None
    http = client or new_client(options)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(outgoing: Outgoing) -> Answer:
        async with gate:
            attempt, latency = await _send(http, outgoing, options)
        service = outgoing.transport.service(outgoing.config) if (
            outgoing.transport and not outgoing.missing) else ""
        return Answer(outgoing.delivery_id, attempt, service, outgoing.message.message_id,
                      hashlib.sha256(outgoing.message.body).hexdigest(), latency,
                      outgoing.transport.name if outgoing.transport else "")

    try:
        while stop is None or not stop.is_set():
            now = clock()
            ids = await claim(db, owner, now=now, batch=batch, lease=lease)
            if not ids:
                return result
            result.claimed += len(ids)
            outgoing = await _outgoing(db, ids, now)
            answers = await asyncio.gather(*(one(o) for o in outgoing))
            await record(db, owner, list(answers), now=clock(), options=options,
                         result=result)
    finally:
        if own_client:
            await http.aclose()
    return result


def new_client(options: Options) -> httpx.AsyncClient:
    """Redirects are never followed: a 3xx is a failed attempt, not a hop elsewhere."""
    return httpx.AsyncClient(follow_redirects=False, timeout=options.timeout_seconds,
                             headers={"user-agent": "nentang-webhooks"}, trust_env=False)
