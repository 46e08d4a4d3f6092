"""Federated sign-in (``/oauth/federated``) and each tenant's identity-provider configuration
(``/api/v1/tenants/{tenant}/identity-provider``).

The sign-in endpoints are anonymous browser steps. Failures answer with a problem instead of
raising, so the spent sign-in and the ``login.failed`` audit record are committed.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from app.audit import service as audit
from app.config import Settings
from app.core.db import utcnow
from app.core.deps import AppSettings, Session
from app.core.problems import Problem, not_found, problem_response
from app.core.requests import NO_STORE
from app.core.validation import is_safe_text
from app.identity import federation, identity_providers, login, login_page
from app.identity.auth import ScopedSession
from app.identity.dependencies import Access, Requires
from app.identity.idp_schemas import IdentityProviderIn, IdentityProviderOut
from app.identity.login import TENANT_CODE
from app.identity.models import IdentityProvider, LoginFlow
from app.identity.oidc import FederationFailure
from app.identity.permissions import Permission
from app.tenancy import repository as tenants
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope

router = APIRouter(tags=["oauth"])
idp_router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["identity providers"])
IdpRead = Annotated[Access, Depends(Requires(Permission.IDP_READ))]
IdpWrite = Annotated[Access, Depends(Requires(Permission.IDP_WRITE))]
STATE_COOKIE = "nentang_federated_state"
COOKIE_PATH = "/oauth/federated"

# ---- configuration -----------------------------------------------------------------------


async def _out(session: AsyncSession, settings: Settings, tenant: Tenant,
               row: IdentityProvider) -> IdentityProviderOut:
    definer = (await tenants.by_ids(session, [row.tenant_id])).get(row.tenant_id)
    return IdentityProviderOut(
        id=row.id, tenant=definer.code if definer else None,
        inherited=row.tenant_id != tenant.id, display_name=row.display_name, issuer=row.issuer,
        client_id=row.client_id, has_client_secret=bool(row.client_secret), scopes=row.scopes,
        match_claim=row.match_claim, jit_enabled=row.jit_enabled, jit_roles=list(row.jit_roles),
        redirect_uri=federation.callback_uri(settings), updated_at=row.updated_at)


@idp_router.get("/identity-provider", response_model=IdentityProviderOut,
                summary="The identity provider officials of this tenant sign in with: its own "
                "or the nearest ancestor's")
async def get_identity_provider(access: IdpRead, session: ScopedSession,
                                settings: AppSettings) -> IdentityProviderOut:
    row = await identity_providers.effective(session, access.tenant)
    if row is None:
        raise not_found("identity-provider", access.tenant.code)
    return await _out(session, settings, access.tenant, row)


@idp_router.put("/identity-provider", response_model=IdentityProviderOut,
                summary="Set this tenant's own identity provider (the client secret is "
                "write-only)")
async def put_identity_provider(access: IdpWrite, body: IdentityProviderIn,
                                session: ScopedSession,
                                settings: AppSettings) -> IdentityProviderOut:
    row = await identity_providers.put(
        session, caller=access.principal, tenant=access.tenant, data=body,
        allow_http_loopback=settings.idp_allow_http_loopback)
    return await _out(session, settings, access.tenant, row)


@idp_router.delete("/identity-provider", status_code=204,
                   summary="Remove this tenant's own identity provider")
async def delete_identity_provider(access: IdpWrite, session: ScopedSession) -> Response:
    await identity_providers.remove(session, caller=access.principal, tenant=access.tenant)
    return Response(status_code=204)


# ---- sign-in -----------------------------------------------------------------------------


async def _audit_failure(session: AsyncSession, *, tenant_id: uuid.UUID,
                         provider: IdentityProvider | None, code: str,
                         subject: str | None) -> None:
    await audit.record(
        session, tenant_id=tenant_id,
        actor=f"idp:{provider.issuer}" if provider is not None else "anonymous",
        action="login.failed",
        resource_type="user" if subject is not None else "identity_provider",
        resource_id=subject or (str(provider.id) if provider is not None else "-"),
        after={"reason": code, "method": "oidc"})


def _forget_state(response: Response) -> Response:
    response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)
    return response


@router.get("/oauth/federated", summary="Sign in through the unit's identity provider "
            "(OpenID Connect); same parameters as /oauth/authorize plus tenant")
async def federated_start(request: Request, session: Session,
                          settings: AppSettings) -> Response:
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    started = login_page.start(settings, params)
    if isinstance(started, Response):
        return started
    await apply_scope(session, TenantScope.platform("federated sign-in"))
    code = params.get("tenant", "").strip().upper()
    tenant = await tenants.get_by_code(session, code) if TENANT_CODE.match(code) else None
    provider = await identity_providers.effective(session, tenant) if tenant is not None else None
    if tenant is None or provider is None:
        # The same answer for an unknown unit: codes are not probed here.
        shown = code[:32] if is_safe_text(code) else "?"
        failure = FederationFailure("idp-not-configured", f"Unit '{shown}' has no identity "
                                    "provider; sign in with a password instead.")
        return problem_response(request, failure.problem())
    try:
        location, state = await federation.start(session, settings, tenant=tenant,
                                                 provider=provider, request=started)
    except FederationFailure as exc:
        await _audit_failure(session, tenant_id=tenant.id, provider=provider, code=exc.code,
                             subject=None)
        return problem_response(request, exc.problem())
    response = RedirectResponse(location, status_code=302, headers=NO_STORE)
    response.set_cookie(STATE_COOKIE, state, max_age=int(federation.FLOW_TTL.total_seconds()),
                        path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=settings.issuer.startswith("https://"))
    return response


@router.get(federation.CALLBACK_PATH, summary="Where the identity provider sends the official "
            "back (code and state, or error)")
async def federated_callback(request: Request, session: Session,
                             settings: AppSettings) -> Response:
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    await apply_scope(session, TenantScope.platform("federated sign-in"))
    flow: LoginFlow | None = None
    provider: IdentityProvider | None = None
    try:
        flow = await federation.take_flow(session, state=params.get("state", ""),
                                          bound=request.cookies.get(STATE_COOKIE))
        provider = await identity_providers.by_id(session, flow.provider_id)
        if provider is None:
            raise FederationFailure("idp-not-configured", "The unit's identity provider was "
                                    "removed during the sign-in.")
        tenant = (await tenants.by_ids(session, [flow.tenant_id]))[flow.tenant_id]
        claims = await federation.authenticate(settings, flow=flow, provider=provider,
                                               params=params)
        user = await federation.resolve_user(session, tenant=tenant, provider=provider,
                                             claims=claims)
        location = await login.issue_code(
            session, settings, tenant=tenant, principal_id=user.principal_id,
            actor=f"user:{user.username}", request=federation.authorize_request(flow),
            method="oidc")
    except (FederationFailure, Problem) as exc:
        failure = exc.problem() if isinstance(exc, FederationFailure) else exc
        flow = flow or (exc.flow if isinstance(exc, FederationFailure) else None)
        if flow is not None:
            provider = provider or await identity_providers.by_id(session, flow.provider_id)
            await _audit_failure(
                session, tenant_id=flow.tenant_id, provider=provider, code=failure.code,
                subject=exc.subject if isinstance(exc, FederationFailure) else None)
        return _forget_state(problem_response(request, failure))
    user.last_login_at = utcnow()
    return _forget_state(RedirectResponse(location, status_code=303, headers=NO_STORE))
