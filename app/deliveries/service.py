"""Queueing deliveries, reading and replaying them, and the tenant's webhook signing keys."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.outbox import OutboxEvent
from app.core.problems import Problem, not_found
from app.deliveries import signing
from app.deliveries.models import Delivery, DeliveryAttempt, Subscription, WebhookSecret
from app.identity.callers import Caller
from app.identity.principals import path_ids
from app.tenancy.models import Tenant

# How long the keys a rotation replaces go on signing, so receivers can switch without a gap.
DEFAULT_OVERLAP = timedelta(hours=24)


def enqueue(session: AsyncSession, event: OutboxEvent, *, kind: str, target: str,
            subscription: Subscription | None = None,
            body: dict[str, Any] | None = None) -> Delivery:
    """Queue ``event`` for ``target`` in the event's own transaction. Deliveries of one
    aggregate to one target go out in ``(aggregate_seq, ordinal)`` order; the ordinal counts
    the deliveries queued for one revision of the aggregate in this transaction."""
    counters: dict[tuple[uuid.UUID, int], int] = session.info.setdefault(
        "nentang_delivery_ordinals", {})
    key = (event.aggregate_id, event.aggregate_seq)
    counters[key] = ordinal = counters.get(key, -1) + 1
    delivery = Delivery(tenant_id=event.tenant_id, id=uuid.uuid4(), event_id=event.id,
                        kind=kind, target=target, ordering_key=event.aggregate_id,
                        aggregate_seq=event.aggregate_seq, ordinal=ordinal, status="pending",
                        attempts=0, next_attempt_at=event.created_at,
                        created_at=event.created_at, updated_at=event.created_at,
                        subscription_tenant_id=subscription.tenant_id if subscription else None,
                        subscription_id=subscription.id if subscription else None, body=body)
    session.add(delivery)
    return delivery


# ---- reading and replaying -------------------------------------------------------------------


def _here_and_below(tenant: Tenant) -> ColumnElement[bool]:
    return Delivery.tenant_id.in_(select(Tenant.id).where(Tenant.path.startswith(tenant.path)))


def _with_event() -> Select[Delivery, OutboxEvent]:
    return select(Delivery, OutboxEvent).join(
        OutboxEvent, (OutboxEvent.tenant_id == Delivery.tenant_id)
        & (OutboxEvent.id == Delivery.event_id))


async def listed(session: AsyncSession, tenant: Tenant, *, status: str | None,
                 after: tuple[str, str] | None,
                 limit: int) -> list[tuple[Delivery, OutboxEvent]]:
    """Deliveries here and below (a ministry sees those of its templates' hooks in every
    commune), with their events, newest first."""
    statement = _with_event().where(_here_and_below(tenant))
    if status is not None:
        statement = statement.where(Delivery.status == status)
    if after is not None:
        moment, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
        statement = statement.where((Delivery.created_at < moment) | (
            (Delivery.created_at == moment) & (Delivery.id < last)))
    rows = await session.execute(statement.order_by(Delivery.created_at.desc(),
                                                    Delivery.id.desc()).limit(limit))
    return [(d, e) for d, e in rows.all()]


async def get(session: AsyncSession, tenant: Tenant,
              delivery_id: uuid.UUID) -> tuple[Delivery, OutboxEvent]:
    row = (await session.execute(_with_event().where(
        _here_and_below(tenant), Delivery.id == delivery_id))).first()
    if row is None:
        raise not_found("delivery", str(delivery_id))
    return row[0], row[1]


async def attempts(session: AsyncSession, tenant: Tenant,
                   delivery_id: uuid.UUID) -> list[DeliveryAttempt]:
    delivery, _ = await get(session, tenant, delivery_id)
    return list((await session.execute(select(DeliveryAttempt).where(
        DeliveryAttempt.tenant_id == delivery.tenant_id,
        DeliveryAttempt.delivery_id == delivery.id).order_by(DeliveryAttempt.attempted_at)
    )).scalars())


async def replay(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                 delivery_id: uuid.UUID) -> tuple[Delivery, OutboxEvent]:
    """Send a dead delivery again from its first attempt (after the target was fixed)."""
    delivery, event = await get(session, tenant, delivery_id)
    locked = (await session.execute(select(Delivery).where(
        Delivery.tenant_id == delivery.tenant_id, Delivery.id == delivery_id).with_for_update()
    )).scalar_one()
    if locked.status != "dead":
        raise Problem(409, "delivery-not-dead", "Chỉ gửi lại được lần gửi đã bị bỏ",
                      "Only a dead delivery can be replayed",
                      detail=f"This delivery is {locked.status}; only a dead one is replayed.")
    now = utcnow()
    before = {"status": locked.status, "attempts": locked.attempts}
    locked.status, locked.attempts, locked.next_attempt_at = "pending", 0, now
    locked.lease_owner = locked.lease_until = None
    locked.updated_at = now
    # A delivery made in a unit below the caller's: read that unit (the scope lets the caller
    # see it), so the audit row written for it is known to be inside the caller's scope.
    await session.get(Tenant, delivery.tenant_id)
    await audit.record(session, tenant_id=delivery.tenant_id, actor=caller.actor,
                       action="delivery.replay", resource_type="delivery",
                       resource_id=str(delivery_id), before=before,
                       after={"status": "pending", "attempts": 0})
    await session.flush()
    return delivery, event


# ---- signing keys ------------------------------------------------------------------------------


def _live(now: datetime) -> ColumnElement[bool]:
    return (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > now)


async def secrets_of(session: AsyncSession, tenant: Tenant) -> list[WebhookSecret]:
    """The tenant's own keys, live and retired, newest first."""
    return list((await session.execute(select(WebhookSecret).where(
        WebhookSecret.tenant_id == tenant.id).order_by(WebhookSecret.created_at.desc())
    )).scalars())


async def rotate(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                 overlap: timedelta = DEFAULT_OVERLAP) -> WebhookSecret:
    """A new key for the tenant; its live keys go on signing for ``overlap``, then retire."""
    now = utcnow()
    for old in (await session.execute(select(WebhookSecret).where(
            WebhookSecret.tenant_id == tenant.id, _live(now)).with_for_update())).scalars():
        old.expires_at = min(old.expires_at or now + overlap, now + overlap)
    key = WebhookSecret(tenant_id=tenant.id, id=uuid.uuid4(), secret=signing.new_secret(),
                        created_at=now, expires_at=None)
    session.add(key)
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="webhook_secret.create", resource_type="webhook_secret",
                       resource_id=str(key.id),
                       after={"overlap_seconds": int(overlap.total_seconds())})
    await session.flush()
    return key


async def signing_keys(session: AsyncSession, tenant_path: str, now: datetime) -> list[str]:
    """The live keys of the nearest tenant on the lineage that has any, newest first."""
    lineage = path_ids(tenant_path)
    rows = (await session.execute(select(WebhookSecret).where(
        WebhookSecret.tenant_id.in_(lineage), _live(now)))).scalars().all()
    for tenant_id in reversed(lineage):
        own = sorted((r for r in rows if r.tenant_id == tenant_id),
                     key=lambda r: r.created_at, reverse=True)
        if own:
            return [r.secret for r in own]
    return []
