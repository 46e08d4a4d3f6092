from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from starlette.responses import JSONResponse

from app.core.deps import AppSettings, Session
from app.core.idempotency import idempotent
from app.core.pagination import DEFAULT_LIMIT, Limit, Page, decode_cursor, split_page
from app.core.problems import Problem, precondition_failed
from app.core.requests import NO_STORE
from app.identity import users
from app.identity.access_schemas import UserCreate, UserCreated
from app.identity.auth import CurrentPrincipal, ScopedSession
from app.identity.dependencies import Access, needs
from app.identity.permissions import Permission
from app.tenancy import repository, service
from app.tenancy.models import Tenant
from app.tenancy.schemas import TenantCreate, TenantCreated, TenantOut, TenantUpdate
from app.tenancy.scope import apply_scope

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])
FIRST_ADMIN_ROLE = "tenant_admin"

TenantReader = Annotated[Access, needs(Permission.TENANTS_READ)]
TenantWriter = Annotated[Access, needs(Permission.TENANTS_WRITE)]


def etag(tenant: Tenant) -> str:
    return f'"{tenant.version}"'


_STRONG_ETAG = re.compile(r'^"([0-9]{1,9})"$', re.ASCII)


def parse_if_match(value: str | None) -> int | None:
    """The version named by a strong ETag, or None for ``*`` (any current version).

    Weak ETags never match (RFC 9110 §13.1.1 uses strong comparison for If-Match).
    """
    if value is None:
        raise Problem(428, "if-match-required", "Thiếu tiêu đề If-Match", "If-Match required",
                      detail="Send the tenant's ETag in If-Match to change it.")
    if value.strip() == "*":
        return None
    match = _STRONG_ETAG.match(value.strip())
    if match is None:
        raise precondition_failed("If-Match does not name a version of this tenant.")
    return int(match.group(1))


@router.post("", status_code=201, response_model=TenantCreated,
             summary="Create a tenant under a parent the caller administers, optionally with "
             "its first admin")
async def create_tenant(
    request: Request, body: TenantCreate, principal: CurrentPrincipal, session: ScopedSession,
    settings: AppSettings,
) -> JSONResponse:
    parent = await service.get_visible(session, body.parent)

    async def create() -> tuple[int, dict[str, object]]:
        tenant = await service.create_child(session, caller=principal, data=body, parent=parent)
        out = TenantCreated(**service.to_out(tenant, parent.code).model_dump())
        if body.admin is not None:
            data = UserCreate(**body.admin.model_dump(), roles=[FIRST_ADMIN_ROLE])
            new = await users.create(session, caller=principal, tenant=tenant, data=data,
                                     pointer="/admin", lock=False)
            out.admin = UserCreated(**users.to_out(new.user, new.status, tenant.code).model_dump(),
                                    initial_password=new.initial_password, totp_uri=new.totp_uri)
        return 201, out.model_dump(mode="json")

    return await idempotent(
        request, session, tenant_id=parent.id, principal_id=str(principal.id), body=body,
        ttl_seconds=settings.idempotency_ttl_seconds, create=create,
        redact=frozenset({"admin.initial_password", "admin.totp_uri"}),
        headers=lambda doc: {"ETag": f'"{doc["version"]}"',
                             "Location": f"{router.prefix}/{doc['code']}",
                             **NO_STORE},
    )


@router.get("", response_model=Page[TenantOut],
            summary="List the tenants the caller may read (tenants:read)")
async def list_tenants(
    principal: CurrentPrincipal, session: Session, cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[TenantOut]:
    # Scoped once, to where the caller may read tenants (not to all its grants first).
    await apply_scope(session, principal.scope_for(Permission.TENANTS_READ))
    after = decode_cursor(cursor, str)
    rows = await repository.visible(session, after_path=after[0] if after else None,
                                    limit=limit + 1)
    return _page(rows, limit, key=lambda t: [t.path])


@router.get("/{tenant}", response_model=TenantOut)
async def get_tenant(access: TenantReader, session: ScopedSession, response: Response
                     ) -> TenantOut:
    tenant = access.tenant
    [(_, parent_code)] = await repository.with_parent_codes(session, [tenant])
    response.headers["ETag"] = etag(tenant)
    return service.to_out(tenant, parent_code)


@router.get("/{tenant}/children", response_model=Page[TenantOut],
            summary="List direct children, or the whole subtree with recursive=true")
async def list_children(
    access: TenantReader, session: ScopedSession,
    cursor: str | None = None, limit: Limit = DEFAULT_LIMIT, recursive: bool = False,
) -> Page[TenantOut]:
    tenant = access.tenant
    after = decode_cursor(cursor, str)
    if recursive:
        rows = await repository.subtree(session, tenant, after_path=after[0] if after else None,
                                        limit=limit + 1)
        return _page(rows, limit, key=lambda t: [t.path])
    rows = await repository.children(session, tenant, after_code=after[0] if after else None,
                                     limit=limit + 1)
    return _page(rows, limit, key=lambda t: [t.code])


@router.patch("/{tenant}", response_model=TenantOut,
              summary="Rename, suspend or resume a tenant (If-Match required)")
async def update_tenant(
    access: TenantWriter, body: TenantUpdate, session: ScopedSession, response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> TenantOut:
    updated = await service.update(session, caller=access.principal, tenant=access.tenant,
                                   data=body,
                                   expected_version=parse_if_match(if_match))
    [(_, parent_code)] = await repository.with_parent_codes(session, [updated])
    response.headers["ETag"] = etag(updated)
    return service.to_out(updated, parent_code)


def _page(
    rows: Sequence[tuple[Tenant, str | None]], limit: int, key: Callable[[Tenant], list[Any]]
) -> Page[TenantOut]:
    page, next_cursor = split_page(rows, limit, lambda row: key(row[0]))
    return Page[TenantOut](items=[service.to_out(t, p) for t, p in page], next_cursor=next_cursor)
