"""The calling principal, read from its bearer token, and the scoped session it works in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.deps import Session
from app.core.problems import forbidden
from app.identity.roles import Permission, role_permissions
from app.identity.tokens import TokenService, invalid_token
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope


@dataclass(frozen=True)
class GrantClaim:
    role: str
    node_id: uuid.UUID
    path: str

    def as_claim(self) -> dict[str, str]:
        return {"role": self.role, "node": str(self.node_id), "path": self.path}


@dataclass(frozen=True)
class Principal:
    id: uuid.UUID
    client_id: str
    home_tenant_id: uuid.UUID
    grants: tuple[GrantClaim, ...]

    def scope(self) -> TenantScope:
        return TenantScope.of_paths(g.path for g in self.grants)

    def permissions_at(self, path: str) -> frozenset[Permission]:
        perms: set[Permission] = set()
        for grant in self.grants:
            if path.startswith(grant.path):
                perms |= role_permissions(grant.role)
        return frozenset(perms)

    @property
    def actor(self) -> str:
        return f"client:{self.client_id}"

    def require(self, permission: Permission, tenant: Tenant) -> None:
        if permission not in self.permissions_at(tenant.path):
            raise forbidden(f"This action needs '{permission}' on tenant '{tenant.code}'.")

    def require_above(self, permission: Permission, tenant: Tenant) -> None:
        """Require ``permission`` through a grant at a strict ancestor of ``tenant``: nobody
        suspends or reactivates the node their own authority comes from."""
        for grant in self.grants:
            if (tenant.path.startswith(grant.path) and grant.path != tenant.path
                    and permission in role_permissions(grant.role)):
                return
        raise forbidden(
            f"Changing the status of '{tenant.code}' needs '{permission}' on one of its "
            "ancestors."
        )

    def token_claims(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "tid": str(self.home_tenant_id),
            "grants": [g.as_claim() for g in self.grants],
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        try:
            grants = tuple(
                GrantClaim(g["role"], uuid.UUID(g["node"]), g["path"]) for g in claims["grants"]
            )
            return cls(uuid.UUID(claims["sub"]), claims["client_id"], uuid.UUID(claims["tid"]),
                       grants)
        except (KeyError, TypeError, ValueError) as exc:
            raise invalid_token("the token lacks the platform's claims") from exc


@dataclass(frozen=True)
class Operator:
    """Someone running the ``nentang`` CLI on the server: trusted with the whole platform."""

    name: str = "cli"

    @property
    def actor(self) -> str:
        return f"operator:{self.name}"

    def permissions_at(self, path: str) -> frozenset[Permission]:
        return frozenset(Permission)

    def require(self, permission: Permission, tenant: Tenant) -> None:
        return None

    def require_above(self, permission: Permission, tenant: Tenant) -> None:
        return None


Caller = Principal | Operator


async def get_token_service(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


async def current_principal(request: Request) -> Principal:
    """Async on purpose: it runs on the event loop, never in FastAPI's thread pool, so the
    token service's verification cache is touched by one thread only."""
    tokens: TokenService = request.app.state.tokens
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_token("send an access token as 'Authorization: Bearer <token>'")
    return Principal.from_claims(tokens.verify(token.strip()))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def scoped_session(principal: CurrentPrincipal, session: Session) -> AsyncSession:
    await apply_scope(session, principal.scope())
    return session


ScopedSession = Annotated[AsyncSession, Depends(scoped_session)]
