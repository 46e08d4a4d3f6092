"""API clients of a tenant (its local systems): create, list, read, change or revoke, and
rotate secrets with an overlap window."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from starlette.responses import JSONResponse

from app.core.deps import AppSettings
from app.core.idempotency import idempotent
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, split_page
from app.core.requests import NO_STORE
from app.identity import clients as service
from app.identity.auth import ScopedSession
from app.identity.clients import ClientView
from app.identity.dependencies import Access, Requires
from app.identity.permissions import Permission
from app.identity.schemas import (
    CLIENT_ID_PATTERN,
    ClientCreate,
    ClientCreated,
    ClientOut,
    ClientUpdate,
    SecretRotated,
    SecretRotation,
)

router = APIRouter(prefix="/api/v1/tenants/{tenant}/clients", tags=["clients"])

ClientsRead = Annotated[Access, Depends(Requires(Permission.CLIENTS_READ))]
ClientsWrite = Annotated[Access, Depends(Requires(Permission.CLIENTS_WRITE))]
ClientIdPath = Annotated[
    str, Path(pattern=CLIENT_ID_PATTERN, description="The client's OAuth client_id",
              examples=["ntc_3q2kQm1y0bXh7f8rVtY6ZQ"])]


def _client_out(view: ClientView) -> ClientOut:
    client = view.client
    return ClientOut(client_id=client.client_id, name=client.name, tenant=view.tenant_code,
                     roles=view.roles, status=view.status,
                     scopes=sorted(client.scopes) if client.scopes is not None else None,
                     rate_limit_per_minute=client.rate_limit_per_minute,
                     last_used_at=client.last_used_at,
                     previous_secret_expires_at=client.previous_secret_expires_at,
                     created_at=client.created_at)


@router.post("", status_code=201, response_model=ClientCreated,
             summary="Create an API client in this tenant with roles no stronger than yours")
async def create_client(request: Request, access: ClientsWrite, body: ClientCreate,
                        session: ScopedSession, settings: AppSettings) -> JSONResponse:
    async def create() -> tuple[int, dict[str, Any]]:
        view, secret = await service.create_client(
            session, caller=access.principal, tenant=access.tenant, name=body.name,
            roles=body.roles, scopes=body.scopes, rate_limit_per_minute=body.rate_limit_per_minute,
            default_rate_limit=settings.client_rate_limit_per_minute)
        out = ClientCreated(**_client_out(view).model_dump(), client_secret=secret)
        return 201, out.model_dump(mode="json")

    return await idempotent(
        request, session, tenant_id=access.tenant.id, principal_id=str(access.principal.id),
        body=body, ttl_seconds=settings.idempotency_ttl_seconds, create=create,
        redact=frozenset({"client_secret"}), headers=lambda _doc: NO_STORE,
    )


@router.get("", response_model=Page[ClientOut], summary="API clients whose home is this tenant")
async def list_clients(
    access: ClientsRead, session: ScopedSession, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ClientOut]:
    after = decode_cursor(cursor, str)
    views = await service.list_clients(session, tenant=access.tenant,
                                       after_client_id=after[0] if after else None,
                                       limit=limit + 1)
    page, next_cursor = split_page(views, limit, lambda v: [v.client.client_id])
    return Page[ClientOut](items=[_client_out(v) for v in page], next_cursor=next_cursor)


@router.get("/{client_id}", response_model=ClientOut,
            summary="An API client, with its limits and when it last obtained a token")
async def get_client(access: ClientsRead, client_id: ClientIdPath,
                     session: ScopedSession) -> ClientOut:
    view = await service.get_client(session, caller=access.principal, tenant=access.tenant,
                                    client_id=client_id)
    return _client_out(view)


@router.patch("/{client_id}", response_model=ClientOut,
              summary="Change a client's name, scopes or rate limit, or revoke it "
                      "(status=disabled takes effect on its next request)")
async def update_client(access: ClientsWrite, client_id: ClientIdPath, body: ClientUpdate,
                        session: ScopedSession, settings: AppSettings) -> ClientOut:
    view = await service.update_client(
        session, caller=access.principal, tenant=access.tenant, client_id=client_id,
        changes=body.model_dump(exclude_unset=True),
        default_rate_limit=settings.client_rate_limit_per_minute)
    return _client_out(view)


@router.post("/{client_id}/secret", response_model=SecretRotated,
             summary="Issue a new secret; the old one keeps working for overlap_seconds")
async def rotate_secret(access: ClientsWrite, client_id: ClientIdPath, session: ScopedSession,
                        response: Response,
                        body: Annotated[SecretRotation | None, Body()] = None) -> SecretRotated:
    rotation = body or SecretRotation()
    view, secret = await service.rotate_secret(
        session, caller=access.principal, tenant=access.tenant, client_id=client_id,
        overlap_seconds=rotation.overlap_seconds)
    response.headers.update(NO_STORE)
    return SecretRotated(client_id=view.client.client_id, client_secret=secret,
                         previous_secret_expires_at=view.client.previous_secret_expires_at)
