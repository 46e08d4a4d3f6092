"""Subscriptions: a unit's standing orders to send events to another system, set up without
code, and the fan-out that turns each event into the deliveries it calls for.

A subscription names a transport and its target (say, an X-Road service of the provincial
LGSP), the events it wants (``case.opened``, ``case.*``, ``sharing:khieu-nai.da-giai-quyet``
for a workflow's data-sharing hook, ``*``) and the case-data fields to send. It covers its
unit and every unit below. Personal-data fields (as the form marks them) are sent only if
the subscription is allowed their level (``basic``, ``sensitive``), and only an admin who
holds that level may allow it.

The fan-out runs in the transaction that writes the event: the body each subscription gets
is fixed then (the data as it was), and a delivery exists exactly when the change does.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.outbox import OutboxEvent
from app.core.problems import Problem, not_found
from app.core.validation import settings_errors
from app.deliveries import service as deliveries
from app.deliveries import transports
from app.deliveries.models import Subscription
from app.forms.submissions import personal_fields
from app.identity.callers import Caller, Principal
from app.identity.permissions import Permission
from app.identity.principals import path_ids
from app.tenancy.models import Tenant
from app.tenancy.scope import platform_read

MASK = "***"
TOPICS = ("submission.submitted", "case.opened", "case.action_taken", "case.closed",
          "case.decision_issued", "case.sla_breached", "case.claim", "case.release",
          "case.assign", "case.migrated", "case.hook.webhook", "case.hook.sharing")
PATTERN = re.compile(r"^(\*|[a-z]+\.\*|[a-z_]+(\.[a-z_]+)+|sharing:[a-z][a-z0-9_.-]{0,127})$")
LEVELS = {"none": frozenset(), "basic": frozenset({"basic"}),
          "sensitive": frozenset({"basic", "sensitive"})}
NEEDS = {"basic": (Permission.PERSONAL_DATA_BASIC,),
         "sensitive": (Permission.PERSONAL_DATA_BASIC, Permission.PERSONAL_DATA_SENSITIVE)}


def _error(pointer: str, en: str, vi: str) -> dict[str, str]:
    return {"pointer": pointer, "detail": en, "detail_vi": vi}


def invalid(errors: list[dict[str, str]]) -> Problem:
    return Problem(422, "subscription-invalid", "Đăng ký nhận sự kiện không hợp lệ",
                   "Invalid subscription", detail="See errors.", errors=errors)


def check(body: Mapping[str, Any], *, principal: Principal, tenant: Tenant) -> None:
    """Refuse a subscription that cannot work or that the caller may not make."""
    errors: list[dict[str, str]] = []
    transport = transports.get(body["transport"])
    if transport is None:
        names = ", ".join(sorted(transports.available()))
        raise invalid([_error("/transport", f"No transport '{body['transport']}' is installed "
                              f"(installed: {names}).", "Không có phương thức truyền này.")])
    errors += settings_errors(transport.config_schema, body["target"], "/target", "transport",
                              "phương thức truyền")
    if not errors:
        try:
            transport.check_config(body["target"])
        except transports.ConfigError as exc:
            errors.append(_error("/target" + exc.pointer, str(exc), "Cấu hình không dùng được."))
    for i, event in enumerate(body["events"]):
        if not PATTERN.match(event) or (not event.startswith("sharing:") and "*" not in event
                                        and event not in TOPICS):
            errors.append(_error(f"/events/{i}", f"Unknown event '{event}'. Known: "
                                 f"{', '.join(TOPICS)}, case.*, *, sharing:<event>.",
                                 "Sự kiện không hợp lệ."))
    if errors:
        raise invalid(errors)
    require_personal_data(principal, tenant, body["personal_data"])


def require_personal_data(principal: Principal, tenant: Tenant, level: str) -> None:
    """Sharing personal data of ``level`` with another system (a subscription, a data
    service) takes holding that level's permissions at the unit."""
    held = principal.permissions_at(tenant.path)
    missing = [p for p in NEEDS.get(level, ()) if p not in held]
    if missing:
        raise Problem(403, "personal-data-not-allowed", "Không được chia sẻ dữ liệu cá nhân",
                      "Personal data not allowed", detail=f"Sharing '{level}' personal data "
                      f"needs {', '.join(missing)} here.")


def redacted(transport_name: str, target: Mapping[str, Any]) -> dict[str, Any]:
    transport = transports.get(transport_name)
    schema = transport.config_schema if transport else {}
    secrets = {n for n, s in schema.get("properties", {}).items() if s.get("writeOnly")}
    if transport is None:
        secrets = set(target)
    return {k: MASK if k in secrets else v for k, v in target.items()}


def _audited(row: Subscription) -> dict[str, Any]:
    return {"name": row.name, "transport": row.transport,
            "target": redacted(row.transport, row.target), "events": row.events,
            "fields": row.fields, "personal_data": row.personal_data, "active": row.active}


# ---- managing -----------------------------------------------------------------------------------


async def listed(session: AsyncSession, tenant: Tenant) -> list[Subscription]:
    return list((await session.execute(select(Subscription).where(
        Subscription.tenant_id == tenant.id).order_by(Subscription.name))).scalars())


async def get(session: AsyncSession, tenant: Tenant, subscription_id: uuid.UUID, *,
              lock: bool = False) -> Subscription:
    statement = select(Subscription).where(Subscription.tenant_id == tenant.id,
                                           Subscription.id == subscription_id)
    if lock:
        statement = statement.with_for_update()
    found = (await session.execute(statement)).scalar_one_or_none()
    if found is None:
        raise not_found("subscription", str(subscription_id))
    return found


async def _name_taken(session: AsyncSession, tenant: Tenant, name: str,
                      other_than: uuid.UUID | None = None) -> None:
    clash = (await session.execute(select(Subscription.id).where(
        Subscription.tenant_id == tenant.id, Subscription.name == name))).scalar_one_or_none()
    if clash is not None and clash != other_than:
        raise Problem(409, "subscription-exists", "Tên đăng ký đã có", "Name taken",
                      detail=f"This unit already has a subscription named '{name}'.",
                      errors=[{"pointer": "/name", "detail": "taken"}])


async def create(session: AsyncSession, *, caller: Caller, principal: Principal,
                 tenant: Tenant, body: dict[str, Any]) -> Subscription:
    check(body, principal=principal, tenant=tenant)
    await _name_taken(session, tenant, body["name"])
    now = utcnow()
    row = Subscription(tenant_id=tenant.id, id=uuid.uuid4(), created_at=now, updated_at=now,
                       **body)
    session.add(row)
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="subscription.create", resource_type="subscription",
                       resource_id=str(row.id), after=_audited(row))
    await session.flush()
    return row


async def replace(session: AsyncSession, *, caller: Caller, principal: Principal,
                  tenant: Tenant, subscription_id: uuid.UUID,
                  body: dict[str, Any]) -> Subscription:
    row = await get(session, tenant, subscription_id, lock=True)
    check(body, principal=principal, tenant=tenant)
    await _name_taken(session, tenant, body["name"], other_than=row.id)
    before = _audited(row)
    for key, value in body.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="subscription.replace", resource_type="subscription",
                       resource_id=str(row.id), before=before, after=_audited(row))
    await session.flush()
    return row


async def delete(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                 subscription_id: uuid.UUID) -> None:
    """Pending deliveries for it then go dead (with the reason) instead of being sent."""
    row = await get(session, tenant, subscription_id, lock=True)
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="subscription.delete", resource_type="subscription",
                       resource_id=str(row.id), before=_audited(row))
    await session.delete(row)
    await session.flush()


# ---- fan-out ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What an event is about, as a subscription's body describes it: a case or a
    submission (``kind``), its unit, its form and data, and what else identifies it."""

    kind: str
    id: uuid.UUID
    tenant_id: uuid.UUID
    form: str
    data: Mapping[str, Any]
    about: Mapping[str, Any]


def wants(subscription: Subscription, event: OutboxEvent) -> bool:
    names = {event.topic}
    if event.topic == "case.hook.sharing":
        names.add(f"sharing:{event.payload.get('hook', {}).get('event', '')}")
    for pattern in subscription.events:
        if pattern == "*" or pattern in names or (
                pattern.endswith(".*") and event.topic.startswith(pattern[:-1])):
            return True
    return False


async def _lineage(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[str, list[Subscription]]:
    """The unit's code and the active subscriptions on its lineage, read once per
    transaction (they may belong to units above the caller's grants: read as the platform,
    revealing nothing to the caller)."""
    cache: dict[uuid.UUID, tuple[str, list[Subscription]]] = session.info.setdefault(
        "nentang_subscriptions", {})
    if tenant_id not in cache:
        async with platform_read(session, "subscriptions"):
            tenant = (await session.execute(select(Tenant).where(Tenant.id == tenant_id))
                      ).scalar_one()
            rows = list((await session.execute(select(Subscription).where(
                Subscription.tenant_id.in_(path_ids(tenant.path)),
                Subscription.active.is_(True)))).scalars())
        cache[tenant_id] = (tenant.code, rows)
    return cache[tenant_id]


async def fan_out(session: AsyncSession, event: OutboxEvent, subject: Subject,
                  definition: Callable[[], Awaitable[dict[str, Any]]]) -> int:
    """Queue ``event`` for every subscription on the subject's lineage that wants it;
    ``definition`` loads the form version (only when some subscription sends fields)."""
    code, subscriptions = await _lineage(session, subject.tenant_id)
    wanted = [s for s in subscriptions if wants(s, event)]
    personal: dict[str, str] | None = None
    for subscription in wanted:
        if subscription.fields and personal is None:
            personal = personal_fields(await definition())
        allowed = LEVELS.get(subscription.personal_data, frozenset())
        data = {name: subject.data[name] for name in subscription.fields
                if name in subject.data and (personal or {}).get(name, "") in allowed | {""}}
        body = {"id": str(event.id), "type": event.topic,
                "occurred_at": event.created_at.isoformat().replace("+00:00", "Z"),
                "subscription": subscription.name, "tenant": code,
                subject.kind: {"id": str(subject.id), "form": subject.form, **subject.about},
                "event": {k: v for k, v in event.payload.items()
                          if k not in subject.about and k != subject.kind},
                "data": data}
        deliveries.enqueue(session, event, kind=subscription.transport,
                           target=str(subscription.id), subscription=subscription, body=body)
    return len(wanted)
