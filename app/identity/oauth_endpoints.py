"""The OAuth 2.0 / OpenID endpoints the platform serves as an authorization server."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.core.deps import AppSettings, Session
from app.core.problems import Problem, problem_response
from app.core.requests import NO_STORE
from app.identity import clients as service
from app.identity import login, login_page, principals
from app.identity.auth import get_token_service
from app.identity.callers import Principal
from app.identity.clients import BASIC_CHALLENGE, OAuthError
from app.identity.permissions import Permission
from app.identity.schemas import TokenResponse
from app.identity.tokens import ALGORITHM, TokenService
from app.tenancy.scope import TenantScope, apply_scope

router = APIRouter(tags=["oauth"])
Tokens = Annotated[TokenService, Depends(get_token_service)]
CLIENT_ID_SHAPE = re.compile(r"^ntc_[A-Za-z0-9_-]{1,60}$", re.ASCII)
MAX_FORM_BYTES = 16 * 1024


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
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
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not secret:
        raise OAuthError(401, "invalid_client", "Client authentication is required.",
                         BASIC_CHALLENGE)
    return client_id, secret


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body with no repeated parameter."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
        "application/x-www-form-urlencoded"
    ):
        raise OAuthError(400, "invalid_request",
                         "Send the parameters as application/x-www-form-urlencoded.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError(400, "invalid_request", f"The body exceeds {MAX_FORM_BYTES} bytes.")
    try:
        form = parse_qs(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise OAuthError(400, "invalid_request", "The body is not UTF-8.") from exc
    if any(len(values) > 1 for values in form.values()):
        raise OAuthError(400, "invalid_request", "A parameter is repeated.")
    return {key: values[0] for key, values in form.items()}


def _token_response(tokens: TokenService, principal: Principal,
                    issued: login.IssuedSession | None = None) -> JSONResponse:
    body = TokenResponse(
        access_token=tokens.issue(str(principal.id), principals.token_claims(principal)),
        expires_in=tokens.ttl, refresh_token=issued.refresh_token if issued else None,
        scope=" ".join(sorted(principal.scopes)) if principal.scopes is not None else None)
    return JSONResponse(body.model_dump(exclude_none=True), headers=NO_STORE)


def _public_client(form: dict[str, str]) -> str:
    client_id = form.get("client_id", "")
    if client_id not in login.PUBLIC_CLIENTS:
        raise OAuthError(401, "invalid_client", "Unknown client.", BASIC_CHALLENGE)
    return client_id


def _as_grant_error(exc: Problem) -> OAuthError:
    """A principal that is disabled or whose unit is suspended cannot continue a session."""
    return OAuthError(400, "invalid_grant", exc.detail or "The account cannot sign in.")


@router.post("/oauth/token", response_model=TokenResponse,
             summary="OAuth 2.0 token endpoint: client_credentials, authorization_code (PKCE), "
             "refresh_token")
async def token(request: Request, session: Session, tokens: Tokens,
                settings: AppSettings) -> JSONResponse:
    form = await _form(request)
    grant_type = form.get("grant_type", "")
    await apply_scope(session, TenantScope.platform("token endpoint"))
    if grant_type == "client_credentials":
        client_id, secret = _client_credentials(request, form)
        if not CLIENT_ID_SHAPE.match(client_id):
            raise OAuthError(401, "invalid_client", "Unknown client or wrong secret.",
                             BASIC_CHALLENGE)
        requested = login.parse_scope(form.get("scope"))
        principal = await service.authenticate(session, client_id, secret, requested)
        return _token_response(tokens, principal)
    if grant_type == "authorization_code":
        try:
            issued = await login.redeem_code(
                session, settings, client_id=_public_client(form), code=form.get("code", ""),
                redirect_uri=form.get("redirect_uri", ""),
                verifier=form.get("code_verifier", ""))
        except login.CodeReuse:
            return problem_response(request, OAuthError(
                400, "invalid_grant", "This code was already used; its session is revoked."))
        except OAuthError:
            raise
        except Problem as exc:
            raise _as_grant_error(exc) from exc
        return _token_response(tokens, issued.principal, issued)
    if grant_type == "refresh_token":
        try:
            issued = await login.refresh(session, client_id=_public_client(form),
                                         token=form.get("refresh_token", ""))
        except login.RefreshReuse:
            # The revocation of the whole session must be committed: answer, don't raise.
            error = OAuthError(400, "invalid_grant",
                               "This refresh token was already used; the session is revoked.")
            return problem_response(request, error)
        except OAuthError:
            raise
        except Problem as exc:
            raise _as_grant_error(exc) from exc
        return _token_response(tokens, issued.principal, issued)
    raise OAuthError(400, "unsupported_grant_type" if grant_type else "invalid_request",
                     "grant_type must be client_credentials, authorization_code or "
                     "refresh_token.")


@router.post("/oauth/revoke", summary="Revoke a refresh token and its session (RFC 7009)")
async def revoke(request: Request, session: Session) -> Response:
    form = await _form(request)
    await apply_scope(session, TenantScope.platform("revoke"))
    await login.revoke(session, client_id=_public_client(form), token=form.get("token", ""))
    return Response(status_code=200, headers=NO_STORE)


def _authorize_params(request: Request, form: dict[str, str] | None = None) -> dict[str, str]:
    params = dict(request.query_params) if form is None else form
    return {k: v for k, v in params.items() if isinstance(v, str)}


@router.get("/oauth/authorize", response_class=HTMLResponse,
            summary="Sign-in page for officials (authorization code + PKCE)")
async def authorize_page(request: Request, settings: AppSettings) -> Response:
    params = _authorize_params(request)
    started = login_page.start(settings, params)
    if isinstance(started, Response):
        return started
    return HTMLResponse(login_page.render(started, tenant=params.get("tenant", ""),
                                          lang=login_page.language(params)),
                        headers={**NO_STORE, **login_page.PAGE_HEADERS})


@router.post("/oauth/authorize", response_class=HTMLResponse,
             summary="Local sign-in (password, and TOTP when required)")
async def authorize_submit(request: Request, session: Session,
                           settings: AppSettings) -> Response:
    try:
        form = await _form(request)
    except OAuthError as exc:
        return HTMLResponse(login_page.render_problem(exc.detail or "Bad request."), 400,
                            headers={**NO_STORE, **login_page.PAGE_HEADERS})
    started = login_page.start(settings, form)
    if isinstance(started, Response):
        return started
    tenant_code = form.get("tenant", "").strip().upper()
    username = form.get("username", "").strip()
    await apply_scope(session, TenantScope.platform("sign in"))
    try:
        tenant, user = await login.password_login(
            session, settings, tenant_code=tenant_code, username=username,
            password=form.get("password", ""), totp=form.get("totp", ""))
        location = await login.issue_code(
            session, settings, tenant=tenant, principal_id=user.principal_id,
            actor=f"user:{user.username}", request=started, method="password")
    except login.LoginFailure as failure:
        # Answer instead of raising, so the failure count and the audit record are committed.
        return HTMLResponse(login_page.render(started, tenant=tenant_code, username=username,
                                              error_code=failure.code, error=failure.message,
                                              lang=login_page.language(form)),
                            status_code=failure.status,
                            headers={**NO_STORE, **login_page.PAGE_HEADERS})
    except Problem as exc:
        return HTMLResponse(login_page.render(started, tenant=tenant_code, username=username,
                                              error_code=exc.code, error=exc.detail,
                                              lang=login_page.language(form)),
                            status_code=403, headers={**NO_STORE, **login_page.PAGE_HEADERS})
    return RedirectResponse(location, status_code=303, headers=NO_STORE)


@router.get("/.well-known/jwks.json", tags=["oauth"], summary="Public keys for access tokens")
async def jwks(tokens: Tokens) -> dict[str, Any]:
    return tokens.jwks()


@router.get("/.well-known/openid-configuration", tags=["oauth"])
@router.get("/.well-known/oauth-authorization-server", tags=["oauth"])
async def metadata(settings: AppSettings) -> dict[str, Any]:
    issuer = settings.issuer.rstrip("/")
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": sorted(p.value for p in Permission),
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["code"],
    }


