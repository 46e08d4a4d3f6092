"""Users, custom roles and grants under ``/api/v1/tenants/{tenant}``, and ``/api/v1/me``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from starlette.responses import JSONResponse

from app.core.deps import AppSettings
from app.core.idempotency import idempotent
from app.core.pagination import DEFAULT_LIMIT, Limit, Page, decode_cursor, split_page
from app.core.problems import Problem
from app.core.requests import NO_STORE
from app.identity import bulk, grants, roles, users
from app.identity.access_schemas import (
    BulkResult,
    GrantCreate,
    GrantOut,
    PasswordReset,
    PasswordResetOut,
    RoleCreate,
    RoleKey,
    RoleOut,
    RoleUpdate,
    TotpEnrolment,
    UserCreate,
    UserCreated,
    UserOut,
    UserUpdate,
)
from app.identity.auth import CurrentPrincipal, ScopedSession
from app.identity.dependencies import Access, needs
from app.identity.permissions import Permission
from app.tenancy import repository as tenants

router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["access"])


UsersRead = Annotated[Access, needs(Permission.USERS_READ)]
UsersWrite = Annotated[Access, needs(Permission.USERS_WRITE)]
RolesRead = Annotated[Access, needs(Permission.ROLES_READ)]
RolesWrite = Annotated[Access, needs(Permission.ROLES_WRITE)]
GrantsRead = Annotated[Access, needs(Permission.GRANTS_READ)]
GrantsWrite = Annotated[Access, needs(Permission.GRANTS_WRITE)]

# ---- users -------------------------------------------------------------------------------


@router.post("/users", status_code=201, response_model=UserCreated,
             summary="Create a user with roles at this tenant")
async def create_user(request: Request, access: UsersWrite, body: UserCreate,
                      session: ScopedSession, settings: AppSettings) -> JSONResponse:
    async def create() -> tuple[int, dict[str, Any]]:
        new = await users.create(session, caller=access.principal, tenant=access.tenant,
                                 data=body)
        out = users.to_out(new.user, new.status, access.tenant.code)
        created = UserCreated(**out.model_dump(), initial_password=new.initial_password,
                              totp_uri=new.totp_uri)
        return 201, created.model_dump(mode="json")

    return await idempotent(
        request, session, tenant_id=access.tenant.id, principal_id=str(access.principal.id),
        body=body, ttl_seconds=settings.idempotency_ttl_seconds, create=create,
        redact=frozenset({"initial_password", "totp_uri"}), headers=lambda _doc: NO_STORE)


@router.post("/users/bulk", response_model=BulkResult,
             summary="Create users from CSV (text/csv) or JSON; a result per row",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}},
                 "application/json": {"schema": {"type": "object", "properties": {
                     "users": {"type": "array",
                               "items": {"$ref": "#/components/schemas/UserCreate"}}}}}}}})
async def bulk_create_users(request: Request, access: UsersWrite,
                            session: ScopedSession) -> JSONResponse:
    rows = bulk.parse(request.headers.get("content-type", ""), await request.body())
    result = await bulk.create_users(session, caller=access.principal, tenant=access.tenant,
                                     rows=rows)
    return JSONResponse(result.model_dump(mode="json"), headers=NO_STORE)


@router.get("/users", response_model=Page[UserOut], summary="Users whose home is this tenant")
async def list_users(access: UsersRead, session: ScopedSession, cursor: str | None = None,
                     limit: Limit = DEFAULT_LIMIT) -> Page[UserOut]:
    after = decode_cursor(cursor, str)
    rows = await users.list_users(session, access.tenant,
                                  after_username=after[0] if after else None, limit=limit + 1)
    page, next_cursor = split_page(rows, limit, lambda row: [row[0].username])
    return Page[UserOut](items=[users.to_out(u, s, access.tenant.code) for u, s in page],
                         next_cursor=next_cursor)


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(access: UsersRead, user_id: uuid.UUID, session: ScopedSession) -> UserOut:
    user, status = await users.get(session, access.tenant, user_id)
    return users.to_out(user, status, access.tenant.code)


@router.patch("/users/{user_id}", response_model=UserOut,
              summary="Change a user; status=disabled takes effect on its next request")
async def update_user(access: UsersWrite, user_id: uuid.UUID, body: UserUpdate,
                      session: ScopedSession) -> UserOut:
    user, status = await users.update(session, caller=access.principal, tenant=access.tenant,
                                      user_id=user_id, data=body)
    return users.to_out(user, status, access.tenant.code)


@router.post("/users/{user_id}/password", response_model=PasswordResetOut,
             summary="Set or generate a new password and lift any lockout")
async def reset_password(access: UsersWrite, user_id: uuid.UUID, session: ScopedSession,
                         response: Response,
                         body: Annotated[PasswordReset | None, Body()] = None) -> PasswordResetOut:
    password = await users.reset_password(
        session, caller=access.principal, tenant=access.tenant, user_id=user_id,
        password=body.password if body else None)
    response.headers.update(NO_STORE)
    return PasswordResetOut(initial_password=password)


@router.post("/users/{user_id}/totp", response_model=TotpEnrolment,
             summary="Issue a new TOTP secret and require it at sign-in")
async def enrol_totp(access: UsersWrite, user_id: uuid.UUID, session: ScopedSession,
                     response: Response) -> TotpEnrolment:
    secret, uri = await users.enrol_totp(session, caller=access.principal,
                                         tenant=access.tenant, user_id=user_id)
    response.headers.update(NO_STORE)
    return TotpEnrolment(secret=secret, totp_uri=uri)


# ---- roles -------------------------------------------------------------------------------


def _role_out(role: roles.ResolvedRole, access: Access,
              codes: dict[uuid.UUID, str]) -> RoleOut:
    return RoleOut(key=role.key, name=role.name, description=role.description,
                   permissions=sorted(role.permissions), builtin=role.builtin,
                   inherited=role.tenant_id not in (None, access.tenant.id),
                   tenant=codes.get(role.tenant_id) if role.tenant_id else None)


async def _codes(session: ScopedSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {i: t.code for i, t in (await tenants.by_ids(session, ids)).items()}


@router.get("/roles", response_model=list[RoleOut],
            summary="Roles usable here: built-in, inherited and this tenant's own")
async def list_roles(access: RolesRead, session: ScopedSession) -> list[RoleOut]:
    usable = await roles.usable_at(session, access.tenant)
    codes = await _codes(session, [r.tenant_id for r in usable if r.tenant_id])
    return [_role_out(r, access, codes) for r in usable]


@router.post("/roles", status_code=201, response_model=RoleOut,
             summary="Define a custom role from permissions you hold")
async def create_role(access: RolesWrite, body: RoleCreate, session: ScopedSession) -> RoleOut:
    await roles.create(session, caller=access.principal, tenant=access.tenant, key=body.key,
                       name=body.name, description=body.description,
                       permissions=body.permissions)
    resolved = await roles.resolve(session, access.tenant, body.key)
    return _role_out(resolved, access, {access.tenant.id: access.tenant.code})


@router.get("/roles/{key}", response_model=RoleOut)
async def get_role(access: RolesRead, key: RoleKey, session: ScopedSession) -> RoleOut:
    try:
        resolved = await roles.resolve(session, access.tenant, key)
    except Problem as exc:
        raise Problem(404, "role-not-found", "Không tìm thấy vai trò", "Role not found",
                      detail=exc.detail) from exc
    codes = await _codes(session, [resolved.tenant_id] if resolved.tenant_id else [])
    return _role_out(resolved, access, codes)


@router.put("/roles/{key}", response_model=RoleOut,
            summary="Replace this tenant's custom role (you must hold old and new permissions)")
async def update_role(access: RolesWrite, key: RoleKey, body: RoleUpdate,
                      session: ScopedSession) -> RoleOut:
    await roles.update(session, caller=access.principal, tenant=access.tenant, key=key,
                       name=body.name, description=body.description,
                       permissions=body.permissions)
    resolved = await roles.resolve(session, access.tenant, key)
    return _role_out(resolved, access, {access.tenant.id: access.tenant.code})


@router.delete("/roles/{key}", status_code=204, summary="Delete an unused custom role")
async def delete_role(access: RolesWrite, key: RoleKey, session: ScopedSession) -> Response:
    await roles.delete(session, caller=access.principal, tenant=access.tenant, key=key)
    return Response(status_code=204)


# ---- grants ------------------------------------------------------------------------------


def _grant_out(view: grants.GrantView) -> GrantOut:
    g = view.grant
    return GrantOut(id=g.id, principal_id=g.principal_id, principal_kind=view.principal_kind,
                    principal_name=view.principal_name, role=g.role, tenant=view.node_code,
                    granted_by=g.granted_by, created_at=g.created_at)


@router.get("/grants", response_model=Page[GrantOut],
            summary="Grants at this tenant, or in its whole subtree with recursive=true")
async def list_grants(access: GrantsRead, session: ScopedSession, recursive: bool = False,
                      principal_id: uuid.UUID | None = None, cursor: str | None = None,
                      limit: Limit = DEFAULT_LIMIT) -> Page[GrantOut]:
    after = decode_cursor(cursor, uuid.UUID)
    views = await grants.list_grants(
        session, access.tenant, recursive=recursive, principal_id=principal_id,
        after_id=after[0] if after else None, limit=limit + 1)
    page, next_cursor = split_page(views, limit, lambda v: [str(v.grant.id)])
    return Page[GrantOut](items=[_grant_out(v) for v in page], next_cursor=next_cursor)


@router.post("/grants", status_code=201, response_model=GrantOut,
             summary="Grant a role at this tenant (no stronger than your own)")
async def create_grant(access: GrantsWrite, body: GrantCreate,
                       session: ScopedSession) -> GrantOut:
    view = await grants.create(session, caller=access.principal, node=access.tenant,
                               principal_id=body.principal_id, role_key=body.role)
    return _grant_out(view)


@router.delete("/grants/{grant_id}", status_code=204, summary="Revoke a grant at this tenant")
async def revoke_grant(access: GrantsWrite, grant_id: uuid.UUID,
                       session: ScopedSession) -> Response:
    await grants.revoke(session, caller=access.principal, node=access.tenant, grant_id=grant_id)
    return Response(status_code=204)


me_router = APIRouter(prefix="/api/v1", tags=["access"])


@me_router.get("/me", summary="Who the token belongs to, and what it may do where")
async def me(principal: CurrentPrincipal, session: ScopedSession) -> dict[str, Any]:
    nodes = await tenants.by_ids(session, [g.node_id for g in principal.grants])
    return {
        "id": str(principal.id),
        "kind": principal.kind,
        "name": principal.name,
        "client_id": principal.client_id,
        "scopes": sorted(principal.scopes) if principal.scopes is not None else None,
        "grants": [{"role": g.role, "tenant": nodes[g.node_id].code,
                    "permissions": sorted(principal.permissions_at(g.path))}
                   for g in principal.grants if g.node_id in nodes],
    }
