"""Who is calling: a principal with a token, or the operator at the CLI.

Both answer the same two questions (:class:`Caller`), and :mod:`app.identity.policy` decides
from those answers alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from app.identity.permissions import Permission
from app.tenancy.scope import TenantScope


@dataclass(frozen=True)
class Grant:
    role: str
    node_id: uuid.UUID
    path: str
    permissions: frozenset[Permission]


@dataclass(frozen=True)
class Principal:
    id: uuid.UUID
    kind: str
    name: str
    client_id: str
    home_tenant_id: uuid.UUID
    grants: tuple[Grant, ...]
    scopes: frozenset[Permission] | None = None
    rate_limit_per_minute: int | None = None

    def scope(self) -> TenantScope:
        return TenantScope.of_paths(g.path for g in self.grants)

    def scope_for(self, permission: Permission) -> TenantScope:
        """The subtrees where the caller holds ``permission`` (within its token's scope)."""
        return TenantScope.of_paths(g.path for g in self.grants
                                    if permission in self._limit(set(g.permissions)))

    def _limit(self, perms: set[Permission]) -> frozenset[Permission]:
        return frozenset(perms if self.scopes is None else perms & self.scopes)

    def permissions_at(self, path: str) -> frozenset[Permission]:
        perms: set[Permission] = set()
        for grant in self.grants:
            if path.startswith(grant.path):
                perms |= grant.permissions
        return self._limit(perms)

    def permissions_above(self, path: str) -> frozenset[Permission]:
        """What grants at strict ancestors of ``path`` allow."""
        perms: set[Permission] = set()
        for grant in self.grants:
            if path.startswith(grant.path) and grant.path != path:
                perms |= grant.permissions
        return self._limit(perms)

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Operator:
    """Someone running the ``nentang`` CLI on the server: trusted with the whole platform."""

    name: str = "cli"

    @property
    def actor(self) -> str:
        return f"operator:{self.name}"

    def permissions_at(self, path: str) -> frozenset[Permission]:
        return frozenset(Permission)

    def permissions_above(self, path: str) -> frozenset[Permission]:
        return frozenset(Permission)


class Caller(Protocol):
    @property
    def actor(self) -> str: ...

    def permissions_at(self, path: str) -> frozenset[Permission]: ...

    def permissions_above(self, path: str) -> frozenset[Permission]: ...
