"""Deliveries under ``/api/v1/tenants/{tenant}/deliveries`` (inspect, replay the dead ones)
and the unit's webhook signing keys under ``/api/v1/tenants/{tenant}/webhook-secrets``."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Response

from app.core.outbox import OutboxEvent
from app.core.pagination import DEFAULT_LIMIT, Limit, Page, decode_cursor, split_page
from app.definitions.lifecycle import tenant_codes
from app.deliveries import service
from app.deliveries.models import Delivery, WebhookSecret
from app.deliveries.schemas import (
    DeliveryOut,
    DeliveryStatus,
    NewSecretOut,
    SecretIn,
    SecretOut,
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
    after = decode_cursor(cursor, str, uuid.UUID)
    rows = await service.listed(session, access.tenant, status=status,
                                after=(after[0], str(after[1])) if after else None,
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
