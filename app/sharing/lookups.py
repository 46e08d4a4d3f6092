"""Prefill lookups: a form field filled from a remote service (a citizen lookup by ID number).

A unit declares a lookup (inherited by the units below): the form and the field whose value
is the key, the service (a plain HTTPS URL with ``{value}``, or an X-Road service reached
through the security server), and which form fields it fills from which parts of the answer
(JSON Pointers). Filling in a form asks ``POST .../forms/{key}/prefill``.

The remote service must never stop anyone from filling in a form: each call has a timeout;
after ``failures_to_open`` failures in a row the lookup's circuit opens and calls answer
"unavailable, fill in by hand" at once for ``open_seconds``, then one trial call decides
whether it closes again; answers are cached for ``cache_seconds`` (in the process's memory
only: they are personal data). An unavailable lookup is an ordinary answer
(``available: false``), never an error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jsonpointer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core import metrics
from app.core.db import utcnow
from app.core.problems import Problem, not_found
from app.deliveries import targets
from app.deliveries.transports.xroad import CLIENT_PARTS, XRoadTransport, service_url
from app.identity.callers import Caller
from app.identity.principals import path_ids
from app.sharing.models import Lookup
from app.tenancy.models import Tenant

UNAVAILABLE = "The lookup is unavailable: fill in by hand."
XROAD_SCHEMA = XRoadTransport.config_schema
UNAVAILABLE_VI = "Không tra cứu được: vui lòng nhập tay."


# ---- the circuit and the cache (per process) ---------------------------------------------------


@dataclass
class Circuit:
    failures: int = 0
    opened_at: float | None = None
    cache: dict[str, tuple[float, dict[str, Any] | None]] = field(default_factory=dict)


_CIRCUITS: dict[tuple[uuid.UUID, str], Circuit] = {}


def circuit_of(row: Lookup) -> Circuit:
    """The circuit of a lookup's current settings (a changed lookup starts afresh, and the
    circuits of its earlier settings are dropped)."""
    key = (row.id, repr(sorted(row.settings.items())))
    if key not in _CIRCUITS:
        for stale in [k for k in _CIRCUITS if k[0] == row.id]:
            del _CIRCUITS[stale]
        _CIRCUITS[key] = Circuit()
    return _CIRCUITS[key]


@dataclass(frozen=True)
class Answer:
    available: bool
    found: bool = False
    values: Mapping[str, Any] = field(default_factory=dict)
    source: str = "live"  # live | cache | circuit-open
    reason: str | None = None


async def _fetch(settings: Mapping[str, Any], value: str,
                 allow_private: bool) -> httpx.Response:
    timeout = settings.get("timeout_seconds", 3)
    if "xroad" in settings:
        url = service_url(settings["xroad"])
    else:
        url = settings["url"].replace("{value}", quote(value, safe=""))
    # A lookup's URL is data an admin typed: it must not reach inside the network.
    await targets.check(url, allow_private=allow_private)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                 trust_env=False) as http:
        if "xroad" in settings:
            target = settings["xroad"]
            client = "/".join(quote(target["client"][p], safe="") for p in CLIENT_PARTS)
            return await http.get(url, params={settings["parameter"]: value},
                                  headers={"X-Road-Client": client,
                                           "X-Road-Id": str(uuid.uuid4()),
                                           "X-Road-UserId": target.get("user_id", "nentang")})
        return await http.get(url)


def _fills(settings: Mapping[str, Any], body: Any) -> dict[str, Any]:
    values = {}
    for target, pointer in settings["fills"].items():
        try:
            values[target] = jsonpointer.resolve_pointer(body, pointer)
        except jsonpointer.JsonPointerException:
            continue
    return values


async def call(row: Lookup, value: str, *, allow_private: bool = False) -> Answer:
    settings, circuit, now = row.settings, circuit_of(row), time.monotonic()
    cached = circuit.cache.get(value)
    if cached is not None and cached[0] > now:
        return Answer(True, cached[1] is not None, cached[1] or {}, "cache")
    if circuit.opened_at is not None:
        if now - circuit.opened_at < settings.get("open_seconds", 30):
            metrics.gateway_call("outbound", row.name, "circuit-open")
            return Answer(False, source="circuit-open", reason=UNAVAILABLE)
        circuit.opened_at = None  # half-open: this call is the trial
        circuit.failures = settings.get("failures_to_open", 5) - 1
    started = time.perf_counter()
    try:
        response = await _fetch(settings, value, allow_private)
        if response.status_code not in (200, 404):
            raise httpx.HTTPStatusError("unavailable", request=response.request,
                                        response=response)
        found = _fills(settings, response.json()) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError, OSError,
            targets.ForbiddenTarget) as exc:
        metrics.gateway_call("outbound", row.name, metrics.gateway_failure(exc), started)
        circuit.failures += 1
        if circuit.failures >= settings.get("failures_to_open", 5):
            circuit.opened_at = time.monotonic()
        return Answer(False, reason=UNAVAILABLE)
    metrics.gateway_call("outbound", row.name, "ok", started)
    circuit.failures = 0
    _remember(circuit, value, found, settings.get("cache_seconds", 60))
    return Answer(True, found is not None, found or {})


MAX_CACHED = 10_000


def _remember(circuit: Circuit, value: str, found: dict[str, Any] | None,
              seconds: float) -> None:
    """Cache an answer for ``seconds`` (none when 0); expired answers are dropped on each
    write and the cache is bounded, so personal data does not outlive its time."""
    now = time.monotonic()
    for key in [k for k, (until, _) in circuit.cache.items() if until <= now]:
        del circuit.cache[key]
    if seconds <= 0:
        return
    if len(circuit.cache) >= MAX_CACHED:
        circuit.cache.pop(next(iter(circuit.cache)))
    circuit.cache[value] = (now + seconds, found)


# ---- managing ------------------------------------------------------------------------------------

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["fills"],
    "oneOf": [{"required": ["url"]}, {"required": ["xroad", "parameter"]}],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://.*\\{value\\}", "maxLength": 2000},
        "xroad": {"type": "object", "required": ["security_server", "service", "client"],
                  "additionalProperties": False,
                  "properties": {"security_server": {"type": "string",
                                                     "pattern": "^https?://"},
                                 "service": XROAD_SCHEMA["properties"]["service"],
                                 "client": XROAD_SCHEMA["properties"]["client"],
                                 "user_id": XROAD_SCHEMA["properties"]["user_id"]}},
        "parameter": {"type": "string", "minLength": 1, "maxLength": 64},
        "fills": {"type": "object", "minProperties": 1,
                  "additionalProperties": {"type": "string", "pattern": "^(/.*)?$"}},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 30},
        "cache_seconds": {"type": "integer", "minimum": 0, "maximum": 3600},
        "failures_to_open": {"type": "integer", "minimum": 1, "maximum": 100},
        "open_seconds": {"type": "number", "minimum": 0, "maximum": 3600},
    },
}


async def own(session: AsyncSession, tenant: Tenant, name: str, *,
              lock: bool = False) -> Lookup | None:
    statement = select(Lookup).where(Lookup.tenant_id == tenant.id, Lookup.name == name)
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def replace(session: AsyncSession, *, caller: Caller, tenant: Tenant, name: str,
                  body: dict[str, Any]) -> Lookup:
    from jsonschema import Draft202012Validator

    from app.forms import service as forms
    from app.forms.definitions import declared_fields

    errors = [{"pointer": "/settings" + "".join(f"/{p}" for p in e.absolute_path),
               "detail": f"fails the '{e.validator}' rule"}
              for e in Draft202012Validator(SETTINGS_SCHEMA).iter_errors(body["settings"])]
    try:
        form = await forms.usable_version(session, tenant, body["form"], None)
        known = declared_fields(form.definition)
        if body["field"] not in known:
            errors.append({"pointer": "/field", "detail": "not a field of the form"})
        fills = body["settings"].get("fills")
        errors += [{"pointer": f"/settings/fills/{target}", "detail": "not a field of the form"}
                   for target in (fills if isinstance(fills, dict) else {})
                   if target not in known]
    except Problem:
        errors.append({"pointer": "/form", "detail": "no such published form here"})
    if errors:
        raise Problem(422, "lookup-invalid", "Cấu hình tra cứu không hợp lệ", "Invalid lookup",
                      detail="See errors.", errors=errors)
    row = await own(session, tenant, name, lock=True)
    now = utcnow()
    if row is None:
        row = Lookup(tenant_id=tenant.id, id=uuid.uuid4(), name=name, created_at=now, **body)
        session.add(row)
    else:
        row.form, row.field, row.settings = body["form"], body["field"], body["settings"]
    row.updated_at = now
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="lookup.replace",
                       resource_type="lookup", resource_id=name, after=body)
    await session.flush()
    return row


async def delete(session: AsyncSession, *, caller: Caller, tenant: Tenant, name: str) -> None:
    row = await own(session, tenant, name, lock=True)
    if row is None:
        raise not_found("lookup", name)
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="lookup.delete",
                       resource_type="lookup", resource_id=name)
    await session.delete(row)
    await session.flush()


async def for_field(session: AsyncSession, tenant: Tenant, form: str,
                    field_name: str) -> Lookup | None:
    """The nearest lookup on the lineage bound to this form field."""
    lineage = path_ids(tenant.path)
    rows = (await session.execute(select(Lookup).where(
        Lookup.tenant_id.in_(lineage), Lookup.form == form, Lookup.field == field_name)
    )).scalars().all()
    by_tenant = {r.tenant_id: r for r in rows}
    return next((by_tenant[t] for t in reversed(lineage) if t in by_tenant), None)
