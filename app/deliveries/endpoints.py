"""Deliveries under ``/api/v1/tenants/{tenant}/deliveries`` (inspect, audit, replay the dead
ones), the unit's subscriptions under ``.../subscriptions`` and its webhook signing keys
under ``.../webhook-secrets``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Response

from app.core.outbox import OutboxEvent
from app.core.pagination import DEFAULT_LIMIT, Limit, Page, decode_cursor, split_page
from app.definitions.lifecycle import tenant_codes
from app.deliveries import service, subscriptions
from app.deliveries.models import Delivery, Subscription, WebhookSecret
from app.deliveries.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryStatus,
    NewSecretOut,
    SecretIn,
    SecretOut,
    SubscriptionIn,
    SubscriptionOut,
)
from app.identity.auth import ScopedSession
from app.identity.dependencies import Access, needs
from app.identity.permissions import Permission

router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["deliveries"])
WorkflowsRead = Annotated[Access, needs(Permission.WORKFLOWS_READ)]
WorkflowsWrite = Annotated[Access, needs(Permission.WORKFLOWS_WRITE)]
TenantsRead = Annotated[Access, needs(Permission.TENANTS_READ)]
TenantsWrite = Annotated[Access, needs(Permission.TENANTS_WRITE)]


def _out(delivery: Delivery, event: OutboxEvent, codes: dict[uuid.UUID, str], *,
         payload: bool = False) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id, tenant=codes[delivery.tenant_id], event=event.id, topic=event.topic,
        kind=delivery.kind, target=delivery.target, case=delivery.ordering_key,
        revision=delivery.aggregate_seq, ordinal=delivery.ordinal,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status=delivery.last_status, last_error=delivery.last_error,
        delivered_at=delivery.delivered_at, created_at=delivery.created_at,
        payload=dict(event.payload) if payload else None)


@router.get("/deliveries", response_model=Page[DeliveryOut],
            summary="Hook deliveries here and below, newest first (status=dead: the dead "
            "letters)")
async def list_deliveries(access: WorkflowsRead, session: ScopedSession,
                          status: DeliveryStatus | None = None, cursor: str | None = None,
                          limit: Limit = DEFAULT_LIMIT) -> Page[DeliveryOut]:
    after = decode_cursor(cursor, datetime, uuid.UUID)
    rows = await service.listed(session, access.tenant, status=status,
                                after=(after[0].isoformat(), str(after[1])) if after else None,
                                limit=limit + 1)
    page, next_cursor = split_page(rows, limit,
                                   lambda r: [r[0].created_at.isoformat(), r[0].id])
    codes = await tenant_codes(session, {d.tenant_id for d, _ in page})
    return Page[DeliveryOut](items=[_out(d, e, codes) for d, e in page],
                             next_cursor=next_cursor)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut,
            summary="One delivery, with the event it carries")
async def read_delivery(access: WorkflowsRead, delivery_id: uuid.UUID,
                        session: ScopedSession) -> DeliveryOut:
    delivery, event = await service.get(session, access.tenant, delivery_id)
    codes = await tenant_codes(session, {delivery.tenant_id})
    return _out(delivery, event, codes, payload=True)


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryOut,
             summary="Send a dead delivery again, from its first attempt")
async def replay_delivery(access: WorkflowsWrite, delivery_id: uuid.UUID,
                          session: ScopedSession) -> DeliveryOut:
    delivery, event = await service.replay(session, caller=access.principal,
                                           tenant=access.tenant, delivery_id=delivery_id)
    codes = await tenant_codes(session, {delivery.tenant_id})
    return _out(delivery, event, codes, payload=True)


def _secret_out(key: WebhookSecret) -> SecretOut:
    return SecretOut(id=key.id, created_at=key.created_at, expires_at=key.expires_at)


@router.get("/webhook-secrets", response_model=list[SecretOut],
            summary="The unit's own webhook signing keys (never their values), newest first")
async def list_secrets(access: TenantsRead, session: ScopedSession) -> list[SecretOut]:
    return [_secret_out(k) for k in await service.secrets_of(session, access.tenant)]


@router.post("/webhook-secrets", response_model=NewSecretOut, status_code=201,
             summary="Create a signing key for the unit's webhooks (and for the units below "
             "that have none); the keys it replaces sign on for the overlap")
async def create_secret(access: TenantsWrite, session: ScopedSession, response: Response,
                        body: Annotated[SecretIn | None, Body()] = None) -> NewSecretOut:
    overlap = timedelta(seconds=(body or SecretIn()).overlap_seconds)
    key = await service.rotate(session, caller=access.principal, tenant=access.tenant,
                               overlap=overlap)
    response.headers["Cache-Control"] = "no-store"
    return NewSecretOut(id=key.id, created_at=key.created_at, expires_at=key.expires_at,
                        secret=key.secret)


# ---- subscriptions --------------------------------------------------------------------------


def _subscription_out(row: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=row.id, name=row.name, transport=row.transport,
        target=subscriptions.redacted(row.transport, row.target), events=row.events,
        fields=row.fields, personal_data=row.personal_data, active=row.active,
        created_at=row.created_at, updated_at=row.updated_at)


@router.get("/subscriptions", response_model=list[SubscriptionOut],
            summary="The unit's subscriptions (events sent to other systems), by name")
async def list_subscriptions(access: TenantsRead,
                             session: ScopedSession) -> list[SubscriptionOut]:
    return [_subscription_out(r) for r in await subscriptions.listed(session, access.tenant)]


@router.post("/subscriptions", response_model=SubscriptionOut, status_code=201,
             summary="Send these events, with these fields, to this service (this unit and "
             "every unit below)")
async def create_subscription(access: TenantsWrite, body: SubscriptionIn,
                              session: ScopedSession) -> SubscriptionOut:
    return _subscription_out(await subscriptions.create(
        session, caller=access.principal, principal=access.principal, tenant=access.tenant,
        body=body.model_dump()))


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut,
            summary="One subscription")
async def read_subscription(access: TenantsRead, subscription_id: uuid.UUID,
                            session: ScopedSession) -> SubscriptionOut:
    return _subscription_out(await subscriptions.get(session, access.tenant, subscription_id))


@router.put("/subscriptions/{subscription_id}", response_model=SubscriptionOut,
            summary="Replace a subscription (events already queued keep their body)")
async def replace_subscription(access: TenantsWrite, subscription_id: uuid.UUID,
                               body: SubscriptionIn, session: ScopedSession) -> SubscriptionOut:
    return _subscription_out(await subscriptions.replace(
        session, caller=access.principal, principal=access.principal, tenant=access.tenant,
        subscription_id=subscription_id, body=body.model_dump()))


@router.delete("/subscriptions/{subscription_id}", status_code=204,
               summary="Delete a subscription; its pending deliveries go dead, not out")
async def delete_subscription(access: TenantsWrite, subscription_id: uuid.UUID,
                              session: ScopedSession) -> Response:
    await subscriptions.delete(session, caller=access.principal, tenant=access.tenant,
                               subscription_id=subscription_id)
    return Response(status_code=204)


@router.get("/deliveries/{delivery_id}/attempts", response_model=list[AttemptOut],
            summary="Every exchange of a delivery with its target (the audit): digest, "
                    "status, latency, gateway message ids")
async def list_attempts(access: WorkflowsRead, delivery_id: uuid.UUID,
                        session: ScopedSession) -> list[AttemptOut]:
    return [AttemptOut(attempted_at=a.attempted_at, service=a.service,
                       message_id=a.message_id, body_sha256=a.body_sha256, status=a.status,
                       outcome=a.outcome, error=a.error, latency_ms=a.latency_ms,
                       detail=a.detail)
            for a in await service.attempts(session, access.tenant, delivery_id)]
