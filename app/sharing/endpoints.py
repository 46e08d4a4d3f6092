"""Data services: published under ``/api/v1/tenants/{tenant}/data-services`` and trusted
gateways under ``.../gateway-trust`` (by the unit's admins), and answered under
``/gateway/{tenant}/...`` to callers the gateway vouches for (the X-Road metaservices
``listMethods``, ``allowedMethods`` and ``getOpenAPI``, and each service)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy import select

from app.audit import service as audit
from app.core import metrics
from app.core.deps import Session
from app.core.pagination import decode_cursor, encode_cursor
from app.core.problems import not_found
from app.definitions.lifecycle import tenant_codes
from app.forms import service as forms
from app.identity.auth import ScopedSession
from app.identity.dependencies import Access, needs, needs_any
from app.identity.permissions import Permission
from app.sharing import lookups, service
from app.sharing.models import DataService, Lookup
from app.sharing.schemas import (
    DataServiceIn,
    DataServiceOut,
    GatewayTrustIn,
    GatewayTrustOut,
    LookupIn,
    LookupOut,
    PrefillIn,
    PrefillOut,
)
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope

router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["data sharing"])
gateway = APIRouter(prefix="/gateway/{tenant}", tags=["data sharing"])
TenantsRead = Annotated[Access, needs(Permission.TENANTS_READ)]
TenantsWrite = Annotated[Access, needs(Permission.TENANTS_WRITE)]


def _out(row: DataService) -> DataServiceOut:
    return DataServiceOut(id=row.id, code=service.code_of(row), name=row.name,
                          version=row.version, title=row.title, description=row.description,
                          source=row.source, form=row.form, fields=row.fields,
                          filters=row.filters, consumers=row.consumers,
                          personal_data=row.personal_data, created_at=row.created_at)


@router.get("/data-services", response_model=list[DataServiceOut],
            summary="Every version of the unit's data services")
async def list_data_services(access: TenantsRead,
                             session: ScopedSession) -> list[DataServiceOut]:
    return [_out(r) for r in await service.listed(session, access.tenant)]


@router.post("/data-services", response_model=DataServiceOut, status_code=201,
             summary="Publish a data service (a new, immutable version of its name)")
async def publish_data_service(access: TenantsWrite, body: DataServiceIn,
                               session: ScopedSession) -> DataServiceOut:
    return _out(await service.publish(session, caller=access.principal,
                                      principal=access.principal, tenant=access.tenant,
                                      body=body.model_dump()))


@router.get("/gateway-trust", response_model=GatewayTrustOut,
            summary="The gateway this unit trusts (its own, or the nearest above)")
async def read_gateway_trust(access: TenantsRead, session: ScopedSession) -> GatewayTrustOut:
    found = await service.trust_at(session, access.tenant)
    if found is None:
        raise not_found("gateway-trust", access.tenant.code)
    codes = await tenant_codes(session, {found.tenant_id})
    return GatewayTrustOut(tenant=codes.get(found.tenant_id), issuer=found.issuer,
                           audience=found.audience, keys=found.keys,
                           updated_at=found.updated_at)


@router.put("/gateway-trust", response_model=GatewayTrustOut,
            summary="Trust this gateway's signed tokens for calls to this unit and below")
async def replace_gateway_trust(access: TenantsWrite, body: GatewayTrustIn,
                                session: ScopedSession) -> GatewayTrustOut:
    row = await service.replace_trust(session, caller=access.principal, tenant=access.tenant,
                                      body=body.model_dump())
    return GatewayTrustOut(tenant=access.tenant.code, issuer=row.issuer,
                           audience=row.audience, keys=row.keys, updated_at=row.updated_at)


# ---- prefill lookups ----------------------------------------------------------------------------

PrefillCaller = Annotated[Access, needs_any(Permission.SUBMISSIONS_CREATE,
                                            Permission.SUBMISSIONS_READ)]


def _lookup_out(row: Lookup) -> LookupOut:
    return LookupOut(name=row.name, form=row.form, field=row.field, settings=row.settings,
                     updated_at=row.updated_at)


@router.get("/lookups", response_model=list[LookupOut],
            summary="The unit's own prefill lookups")
async def list_lookups(access: TenantsRead, session: ScopedSession) -> list[LookupOut]:
    rows = (await session.execute(select(Lookup).where(
        Lookup.tenant_id == access.tenant.id).order_by(Lookup.name))).scalars()
    return [_lookup_out(r) for r in rows]


@router.put("/lookups/{name}", response_model=LookupOut,
            summary="Declare or replace a lookup that prefills a form from a remote service "
            "(the units below use it too)")
async def replace_lookup(access: TenantsWrite, name: Annotated[str, Path(
        pattern=r"^[a-z][a-z0-9-]{0,63}$")], body: LookupIn,
                         session: ScopedSession) -> LookupOut:
    return _lookup_out(await lookups.replace(session, caller=access.principal,
                                             tenant=access.tenant, name=name,
                                             body=body.model_dump()))


@router.delete("/lookups/{name}", status_code=204, summary="Drop a lookup")
async def delete_lookup(access: TenantsWrite, name: str, session: ScopedSession) -> Response:
    await lookups.delete(session, caller=access.principal, tenant=access.tenant, name=name)
    return Response(status_code=204)


@router.post("/forms/{key}/prefill", response_model=PrefillOut,
             summary="Prefill a form from the remote service bound to one of its fields; an "
             "unavailable service is an answer (fill in by hand), never an error")
async def prefill(access: PrefillCaller, key: str, body: PrefillIn, request: Request,
                  session: ScopedSession) -> PrefillOut:
    row = await lookups.for_field(session, access.tenant, key, body.field)
    if row is None:
        raise not_found("lookup", f"{key}/{body.field}")
    answer = await lookups.call(row, body.value, allow_private=request.app.state.settings
                                .delivery_allow_private_targets)
    return PrefillOut(available=answer.available, found=answer.found, values=dict(answer.values),
                      source=answer.source, reason=answer.reason,
                      reason_vi=lookups.UNAVAILABLE_VI if answer.reason else None)


# ---- the gateway's side -------------------------------------------------------------------------


async def _caller(session: Session, tenant_code: str,
                  request: Request) -> tuple[Tenant, list[DataService], service.Consumer]:
    """The unit (scoped to its subtree), its services, and the authenticated consumer."""
    await apply_scope(session, TenantScope.platform("gateway lookup"))
    tenant = (await session.execute(select(Tenant).where(Tenant.code == tenant_code))
              ).scalar_one_or_none()
    trust = await service.trust_at(session, tenant) if tenant is not None else None
    consumer = service.authenticate(trust, {k.lower(): v for k, v in request.headers.items()})
    assert tenant is not None  # no trust without a unit
    await apply_scope(session, TenantScope.of_paths([tenant.path]))
    return tenant, service.latest_versions(await service.listed(session, tenant)), consumer


def _methods(tenant: Tenant, services: list[DataService]) -> dict[str, Any]:
    return {"service": [{"service_code": service.code_of(s), "service_type": "REST",
                         "title": s.title, "object_type": "SERVICE", "tenant": tenant.code}
                        for s in services]}


@gateway.get("/listMethods", summary="X-Road metaservice: the unit's data services")
async def list_methods(tenant: str, request: Request, session: Session) -> dict[str, Any]:
    unit, services, _ = await _caller(session, tenant, request)
    return _methods(unit, services)


@gateway.get("/allowedMethods", summary="X-Road metaservice: the services this consumer may "
             "call")
async def allowed_methods(tenant: str, request: Request, session: Session) -> dict[str, Any]:
    unit, services, consumer = await _caller(session, tenant, request)
    return _methods(unit, [s for s in services if service.allowed(s, consumer)])


@gateway.get("/getOpenAPI", summary="X-Road metaservice: a service's OpenAPI description")
async def get_openapi(tenant: str, serviceCode: str, request: Request,
                      session: Session) -> dict[str, Any]:
    unit, _, consumer = await _caller(session, tenant, request)
    found = service.find(await service.listed(session, unit), serviceCode)
    if not service.allowed(found, consumer):
        raise service.forbidden(found)
    form = await forms.usable_version(session, unit, found.form, None)
    return service.openapi(found, unit, form.definition["schema"])


@gateway.get("/services/{service_code}", summary="Call a data service (filters as query "
             "parameters; a page of records, newest first)")
async def call_service(tenant: str, service_code: str, request: Request,
                       session: Session) -> dict[str, Any]:
    unit, _, consumer = await _caller(session, tenant, request)
    found = service.find(await service.listed(session, unit), service_code)
    if not service.allowed(found, consumer):
        raise service.forbidden(found)
    params = dict(request.query_params)
    after = decode_cursor(params.get("cursor"), datetime, uuid.UUID)
    rows = await service.records(session, unit, found, params,
                                 (after[0], after[1]) if after else None)
    page = rows[:service.PAGE]
    metrics.gateway_call("inbound", found.name, "ok")
    await audit.record(session, tenant_id=unit.id, actor=f"gateway:{consumer.client}",
                       action="data_service.call", resource_type="data_service",
                       resource_id=service.code_of(found),
                       after={"message_id": consumer.message_id, "records": len(page)})
    return {"items": page, "next_cursor": encode_cursor([page[-1]["created_at"], page[-1]["id"]])
            if len(rows) > service.PAGE else None}
