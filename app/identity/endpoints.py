from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse

from app.core.deps import AppSettings, Session
from app.core.idempotency import idempotent
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, split_page
from app.identity import service
from app.identity.auth import CurrentPrincipal, ScopedSession, get_token_service
from app.identity.roles import Permission
from app.identity.schemas import ClientCreate, ClientCreated, ClientOut, TokenResponse
from app.identity.service import BASIC_CHALLENGE, ClientView, OAuthError
from app.identity.tokens import ALGORITHM, TokenService
from app.tenancy.dependencies import ActingTenant
from app.tenancy.scope import TenantScope, apply_scope

router = APIRouter(tags=["identity"])
Tokens = Annotated[TokenService, Depends(get_token_service)]
CLIENT_ID_SHAPE = re.compile(r"^ntc_[A-Za-z0-9_-]{1,60}$", re.ASCII)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _client_credentials(request: Request, form: dict[str, list[str]]) -> tuple[str, str]:
    """Read client_secret_basic or client_secret_post credentials (RFC 6749 §2.3.1)."""
    header = request.headers.get("authorization")
    in_body = "client_id" in form or "client_secret" in form
    if header:
        if in_body:
            raise OAuthError(400, "invalid_request",
                             "Use one client authentication method, not two.")
        scheme, _, value = header.partition(" ")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
            client_id, sep, secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if scheme.lower() != "basic" or not sep:
            raise OAuthError(401, "invalid_client", "Malformed Basic credentials.",
                             BASIC_CHALLENGE)
        return unquote_plus(client_id), unquote_plus(secret)
    client_id, secret = form.get("client_id", [""])[0], form.get("client_secret", [""])[0]
    if not client_id or not secret:
        raise OAuthError(401, "invalid_client", "Client authentication is required.",
                         BASIC_CHALLENGE)
    return client_id, secret


@router.post("/oauth/token", response_model=TokenResponse, tags=["oauth"],
             summary="OAuth 2.0 token endpoint (client_credentials grant)")
async def token(request: Request, session: Session, tokens: Tokens) -> JSONResponse:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
        "application/x-www-form-urlencoded"
    ):
        raise OAuthError(400, "invalid_request",
                         "Send the parameters as application/x-www-form-urlencoded.")
    try:
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise OAuthError(400, "invalid_request", "The body is not UTF-8.") from exc
    if any(len(values) > 1 for values in form.values()):
        raise OAuthError(400, "invalid_request", "A parameter is repeated.")
    grant_type = form.get("grant_type", [""])[0]
    if grant_type != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type" if grant_type else "invalid_request",
                         "Only grant_type=client_credentials is supported.")
    client_id, secret = _client_credentials(request, form)
    if not CLIENT_ID_SHAPE.match(client_id):
        raise OAuthError(401, "invalid_client", "Unknown client or wrong secret.",
                         BASIC_CHALLENGE)
    await apply_scope(session, TenantScope.platform("authenticate client"))
    principal = await service.authenticate(session, client_id, secret)
    access_token = tokens.issue(str(principal.id), principal.token_claims())
    body = TokenResponse(access_token=access_token, expires_in=tokens.ttl)
    return JSONResponse(body.model_dump(), headers=NO_STORE)


@router.get("/.well-known/jwks.json", tags=["oauth"], summary="Public keys for access tokens")
async def jwks(tokens: Tokens) -> dict[str, Any]:
    return tokens.jwks()


@router.get("/.well-known/openid-configuration", tags=["oauth"])
@router.get("/.well-known/oauth-authorization-server", tags=["oauth"])
async def metadata(settings: AppSettings) -> dict[str, Any]:
    issuer = settings.issuer.rstrip("/")
    return {
        "issuer": settings.issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["token"],
    }


def _client_out(view: ClientView) -> ClientOut:
    return ClientOut(client_id=view.client.client_id, name=view.client.name,
                     tenant=view.tenant_code, roles=view.roles, status=view.status,
                     created_at=view.client.created_at)


@router.post("/api/v1/tenants/{tenant}/clients", status_code=201, response_model=ClientCreated,
             summary="Create an API client in this tenant with roles no stronger than yours")
async def create_client(
    request: Request, tenant: ActingTenant, body: ClientCreate, principal: CurrentPrincipal,
    session: ScopedSession, settings: AppSettings,
) -> JSONResponse:
    async def create() -> tuple[int, dict[str, Any]]:
        view, secret = await service.create_client(
            session, caller=principal, tenant=tenant, name=body.name, roles=body.roles)
        out = ClientCreated(**_client_out(view).model_dump(), client_secret=secret)
        return 201, out.model_dump(mode="json")

    return await idempotent(
        request, session, tenant_id=tenant.id, principal_id=principal.client_id, body=body,
        ttl_seconds=settings.idempotency_ttl_seconds, create=create,
        redact=frozenset({"client_secret"}), headers=lambda _doc: NO_STORE,
    )


@router.get("/api/v1/tenants/{tenant}/clients", response_model=Page[ClientOut])
async def list_clients(
    tenant: ActingTenant, principal: CurrentPrincipal, session: ScopedSession,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ClientOut]:
    principal.require(Permission.CLIENTS_READ, tenant)
    after = decode_cursor(cursor, str)
    views = await service.list_clients(session, tenant=tenant,
                                       after_client_id=after[0] if after else None,
                                       limit=limit + 1)
    page, next_cursor = split_page(views, limit, lambda v: [v.client.client_id])
    return Page[ClientOut](items=[_client_out(v) for v in page], next_cursor=next_cursor)
