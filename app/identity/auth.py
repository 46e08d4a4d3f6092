"""The calling principal and the scoped session it works in.

An access token says *who* calls (``sub``, home tenant ``tid``, ``kind``, the OAuth
``client_id`` and any ``scope`` limit). *What* the caller may do is read from the database on
every request (:func:`app.identity.principals.load`): a disabled user or client, a revoked
grant or a suspended tenant takes effect on the next request, not when the token expires.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.deps import Session
from app.identity import principals
from app.identity.callers import Principal
from app.identity.tokens import TokenService, invalid_token
from app.tenancy.scope import apply_scope


async def get_token_service(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_token("send an access token as 'Authorization: Bearer <token>'")
    return token.strip()


async def current_principal(request: Request, session: Session) -> Principal:
    """Verify the bearer token, then load the principal's live state. Async on purpose: it
    runs on the event loop, never in FastAPI's thread pool, so the token service's
    verification cache is touched by one thread only."""
    tokens: TokenService = request.app.state.tokens
    claims = tokens.verify(bearer_token(request))
    principal = await principals.from_token(session, claims)
    request.app.state.rate_limiter.check(principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def scoped_session(principal: CurrentPrincipal, session: Session) -> AsyncSession:
    await apply_scope(session, principal.scope())
    return session


ScopedSession = Annotated[AsyncSession, Depends(scoped_session)]
