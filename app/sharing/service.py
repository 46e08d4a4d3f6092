"""Publishing data services, trusting a gateway, and answering the gateway's calls.

**Trust.** A call is believed only on an authenticated channel: a token the unit's gateway
signs (``Authorization: Bearer``, a JWT checked against the gateway's public keys, issuer and
audience as the unit configured them, and its expiry). The consumer is who the token says
(claim ``client``: ``INSTANCE/CLASS/MEMBER/SUBSYSTEM``); an ``X-Road-Client`` header that
disagrees is refused, one alone proves nothing. Then access is checked per consumer: a data
service answers only the subsystems it lists.

**Answers** hold exactly the service's exposed fields (personal-data ones only up to the
level the service was published with), filtered by the parameters it allows, newest first,
a page at a time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.cases.models import Case
from app.core import metrics
from app.core.db import utcnow
from app.core.problems import Problem, not_found
from app.deliveries.subscriptions import LEVELS, require_personal_data
from app.forms import service as forms
from app.forms.definitions import declared_fields
from app.forms.models import Submission
from app.forms.submissions import personal_fields
from app.identity.callers import Caller, Principal
from app.identity.principals import path_ids
from app.sharing.models import DataService, GatewayTrust
from app.tenancy.models import Tenant

CONSUMER = re.compile(r"^[^/\s]{1,64}/[^/\s]{1,64}/[^/\s]{1,255}/[^/\s]{1,255}$")
PAGE = 100


def _invalid(errors: list[dict[str, str]]) -> Problem:
    return Problem(422, "data-service-invalid", "Dịch vụ dữ liệu không hợp lệ",
                   "Invalid data service", detail="See errors.", errors=errors)


def _error(pointer: str, en: str) -> dict[str, str]:
    return {"pointer": pointer, "detail": en}


# ---- publishing ---------------------------------------------------------------------------------


async def publish(session: AsyncSession, *, caller: Caller, principal: Principal,
                  tenant: Tenant, body: dict[str, Any]) -> DataService:
    """A new version of the named service (the first is 1); published versions never
    change, so a consumer's contract holds until it asks for a newer one. Exposing personal
    data takes holding its permissions here, as allowing a subscription does."""
    require_personal_data(principal, tenant, body["personal_data"])
    errors: list[dict[str, str]] = []
    try:
        form = await forms.usable_version(session, tenant, body["form"], None)
    except Problem:
        raise _invalid([_error("/form", f"No published form '{body['form']}' is usable "
                               "here.")]) from None
    known = declared_fields(form.definition)
    for key in ("fields", "filters"):
        errors += [_error(f"/{key}/{i}", f"'{name}' is not a field of form '{body['form']}'.")
                   for i, name in enumerate(body[key]) if name not in known]
    errors += [_error(f"/filters/{i}", f"'{name}' may be filtered on only if it is exposed.")
               for i, name in enumerate(body["filters"])
               if name in known and name not in body["fields"]]
    errors += [_error(f"/consumers/{i}", "A consumer is an X-Road subsystem: "
                      "INSTANCE/CLASS/MEMBER/SUBSYSTEM.")
               for i, consumer in enumerate(body["consumers"]) if not CONSUMER.match(consumer)]
    personal = personal_fields(form.definition)
    allowed = LEVELS[body["personal_data"]]
    errors += [_error(f"/fields/{i}", f"'{name}' is {personal[name]} personal data; publish "
                      f"with personal_data '{personal[name]}' to expose it.")
               for i, name in enumerate(body["fields"])
               if personal.get(name) and personal[name] not in allowed]
    if errors:
        raise _invalid(errors)
    latest = (await session.execute(select(func.max(DataService.version)).where(
        DataService.tenant_id == tenant.id, DataService.name == body["name"]))).scalar()
    row = DataService(tenant_id=tenant.id, id=uuid.uuid4(), version=(latest or 0) + 1,
                      created_at=utcnow(), **body)
    session.add(row)
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="data_service.publish", resource_type="data_service",
                       resource_id=f"{row.name}.v{row.version}",
                       after={k: v for k, v in body.items()})
    await session.flush()
    return row


async def listed(session: AsyncSession, tenant: Tenant) -> list[DataService]:
    """Every version of the unit's services, by name then version."""
    return list((await session.execute(select(DataService).where(
        DataService.tenant_id == tenant.id).order_by(DataService.name, DataService.version)
    )).scalars())


def latest_versions(services: list[DataService]) -> list[DataService]:
    newest: dict[str, DataService] = {}
    for service in services:
        if service.name not in newest or service.version > newest[service.name].version:
            newest[service.name] = service
    return sorted(newest.values(), key=lambda s: s.name)


def code_of(service: DataService) -> str:
    return f"{service.name}.v{service.version}"


def find(services: list[DataService], code: str) -> DataService:
    """``name`` (the newest version) or ``name.vN``."""
    name, _, version = code.partition(".v")
    matching = [s for s in services if s.name == name
                and (not version or str(s.version) == version)]
    if not matching:
        raise not_found("service", code)
    return max(matching, key=lambda s: s.version)


# ---- trusting the gateway ----------------------------------------------------------------------


async def replace_trust(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                        body: dict[str, Any]) -> GatewayTrust:
    try:
        keys = KeySet.import_key_set(body["keys"])
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise Problem(422, "gateway-trust-invalid", "Cấu hình cổng không hợp lệ",
                      "Invalid gateway trust", detail=f"The keys are not a JWKS: {exc}",
                      errors=[_error("/keys", "not a JWKS of public keys")]) from None
    if any(key.is_private for key in keys.keys):
        raise Problem(422, "gateway-trust-invalid", "Cấu hình cổng không hợp lệ",
                      "Invalid gateway trust", detail="Only the gateway's public keys belong "
                      "here.", errors=[_error("/keys", "contains a private key")])
    row = (await session.execute(select(GatewayTrust).where(
        GatewayTrust.tenant_id == tenant.id).with_for_update())).scalar_one_or_none()
    now = utcnow()
    if row is None:
        row = GatewayTrust(tenant_id=tenant.id, created_at=now, **body, updated_at=now)
        session.add(row)
    else:
        row.issuer, row.audience, row.keys, row.updated_at = (body["issuer"], body["audience"],
                                                              body["keys"], now)
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="gateway_trust.replace", resource_type="gateway_trust",
                       resource_id=str(tenant.id),
                       after={"issuer": body["issuer"], "audience": body["audience"],
                              "kids": [k.kid for k in keys.keys]})
    await session.flush()
    return row


async def trust_at(session: AsyncSession, tenant: Tenant) -> GatewayTrust | None:
    """The nearest trust on the lineage (a province's LGSP serves its communes)."""
    lineage = path_ids(tenant.path)
    rows = {r.tenant_id: r for r in (await session.execute(select(GatewayTrust).where(
        GatewayTrust.tenant_id.in_(lineage)))).scalars()}
    return next((rows[t] for t in reversed(lineage) if t in rows), None)


def _refused(detail: str) -> Problem:
    metrics.gateway_call("inbound", None, "refused")
    return Problem(401, "gateway-unauthenticated", "Lời gọi không được xác thực",
                   "Call not authenticated", detail=detail,
                   headers={"WWW-Authenticate": 'Bearer realm="gateway"'})


@dataclass(frozen=True)
class Consumer:
    client: str
    message_id: str | None


def authenticate(trust: GatewayTrust | None, headers: Mapping[str, str]) -> Consumer:
    """The consumer, as the gateway's signed token names it (see the module)."""
    if trust is None:
        raise _refused("This unit trusts no gateway.")
    authorization = headers.get("authorization", "")
    if not authorization.lower().startswith("bearer "):
        raise _refused("A call must carry the gateway's signed token.")
    try:
        decoded = jwt.decode(authorization[7:].strip(),
                             KeySet.import_key_set(trust.keys),  # type: ignore[arg-type]
                             algorithms=["ES256", "RS256", "PS256"])
        jwt.JWTClaimsRegistry(leeway=30, iss={"essential": True, "value": trust.issuer},
                              aud={"essential": True, "value": trust.audience},
                              exp={"essential": True},
                              client={"essential": True}).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise _refused(f"The token does not verify: {exc}") from None
    client = str(decoded.claims["client"])
    header = headers.get("x-road-client")
    if header is not None and header != client:
        raise _refused("X-Road-Client does not match the authenticated client.")
    return Consumer(client, decoded.claims.get("jti") or headers.get("x-road-id"))


def allowed(service: DataService, consumer: Consumer) -> bool:
    return consumer.client in service.consumers


def forbidden(service: DataService) -> Problem:
    metrics.gateway_call("inbound", service.name, "refused")
    return Problem(403, "consumer-not-allowed", "Bên gọi không được phép",
                   "Consumer not allowed", detail=f"This consumer may not call "
                   f"'{code_of(service)}'.")


# ---- answering ---------------------------------------------------------------------------------


async def records(session: AsyncSession, tenant: Tenant, service: DataService,
                  params: Mapping[str, str], after: tuple[datetime, uuid.UUID] | None,
                  ) -> list[dict[str, Any]]:
    """The page of records the service answers with (``PAGE + 1`` to tell a next page)."""
    unknown = sorted(set(params) - set(service.filters) - {"cursor"})
    if unknown:
        raise Problem(422, "unknown-parameter", "Tham số không hợp lệ", "Unknown parameter",
                      detail=f"'{code_of(service)}' filters only on "
                      f"{', '.join(service.filters) or 'nothing'}.",
                      errors=[{"parameter": name, "in": "query", "detail": "not a filter of "
                               "this service"} for name in unknown])
    model: Any = Case if service.source == "cases" else Submission
    statement = select(model, Tenant.code).join(Tenant, Tenant.id == model.tenant_id).where(
        Tenant.path.startswith(tenant.path), model.form_key == service.form)
    if service.source == "submissions":
        statement = statement.where(Submission.status == "submitted")
    for name, value in params.items():
        if name in service.filters:
            statement = statement.where(model.data[name].as_string() == value)
    if after is not None:
        statement = statement.where((model.created_at < after[0]) | (
            (model.created_at == after[0]) & (model.id < after[1])))
    rows = (await session.execute(statement.order_by(model.created_at.desc(), model.id.desc())
                                  .limit(PAGE + 1))).all()
    found = []
    for row, code in rows:
        item: dict[str, Any] = {"id": str(row.id), "tenant": code,
                                "created_at": row.created_at.isoformat()}
        if service.source == "cases":
            item.update(state=row.state, status=row.status, outcome=row.outcome)
        item["data"] = {name: row.data[name] for name in service.fields if name in row.data}
        found.append(item)
    return found


def openapi(service: DataService, tenant: Tenant, form_schema: Mapping[str, Any]) -> dict[str,
                                                                                           Any]:
    """An OpenAPI 3 description of the service, its fields typed from the form's schema."""
    properties = form_schema.get("properties", {})
    fields = {name: properties.get(name, {}) for name in service.fields}
    record: dict[str, Any] = {
        "type": "object",
        "properties": {"id": {"type": "string", "format": "uuid"},
                       "tenant": {"type": "string"},
                       "created_at": {"type": "string", "format": "date-time"},
                       "data": {"type": "object", "properties": fields,
                                "additionalProperties": False}}}
    if service.source == "cases":
        record["properties"].update(state={"type": "string"}, status={"type": "string"},
                                    outcome={"type": ["string", "null"]})
    return {
        "openapi": "3.1.0",
        "info": {"title": service.title, "version": str(service.version),
                 "description": service.description or ""},
        "paths": {f"/gateway/{tenant.code}/services/{code_of(service)}": {"get": {
            "operationId": code_of(service),
            "parameters": [{"name": name, "in": "query", "required": False,
                            "schema": {"type": "string"}} for name in service.filters]
            + [{"name": "cursor", "in": "query", "required": False,
                "schema": {"type": "string"}}],
            "responses": {"200": {"description": "A page of records", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "items": {"type": "array", "items": record},
                    "next_cursor": {"type": ["string", "null"]}}}}}},
                "401": {"description": "Not called through the gateway"},
                "403": {"description": "Consumer not allowed"}}}}},
    }
