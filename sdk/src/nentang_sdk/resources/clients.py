"""API clients: the credentials local systems use to call the platform as a unit."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from nentang_sdk._core import Call, M, Resource, body, op, paged
from nentang_sdk.models import ApiClient, ApiClientCreated, SecretRotated


class Clients(Resource[M]):
    @paged("GET /api/v1/tenants/{tenant}/clients")
    def list(self, tenant: str, /, *, limit: int | None = None) -> Call[ApiClient]:
        """API clients whose home is this unit."""
        return Call(ApiClient, tenant, params={"limit": limit})

    @op("GET /api/v1/tenants/{tenant}/clients/{client_id}")
    def get(self, tenant: str, client_id: str, /) -> Call[ApiClient]:
        return Call(ApiClient, tenant, client_id)

    @op("POST /api/v1/tenants/{tenant}/clients")
    def create(self, tenant: str, /, *, name: str, roles: Sequence[str],
               scopes: Sequence[str] | None = None, rate_limit_per_minute: int | None = None,
               idempotency_key: str | None = None) -> Call[ApiClientCreated]:
        """A new API client with roles no stronger than the caller's; ``client_secret`` is in
        the answer once (a retried request with the same key gets it as null)."""
        return Call(ApiClientCreated, tenant, json=body(
            name=name, roles=builtins.list(roles),
            scopes=builtins.list(scopes) if scopes is not None else None,
            rate_limit_per_minute=rate_limit_per_minute),
            create=True, idempotency_key=idempotency_key)

    @op("PATCH /api/v1/tenants/{tenant}/clients/{client_id}")
    def update(self, tenant: str, client_id: str, /, *, name: str | None = None,
               scopes: Sequence[str] | None = None, rate_limit_per_minute: int | None = None,
               status: str | None = None) -> Call[ApiClient]:
        """Rename, narrow, re-limit, or disable (``status="disabled"``) a client."""
        return Call(ApiClient, tenant, client_id, json=body(
            name=name, status=status, rate_limit_per_minute=rate_limit_per_minute,
            scopes=builtins.list(scopes) if scopes is not None else None))

    @op("POST /api/v1/tenants/{tenant}/clients/{client_id}/secret")
    def rotate_secret(self, tenant: str, client_id: str, /, *,
                      overlap_seconds: int | None = None) -> Call[SecretRotated]:
        """A new secret; the old one keeps working for ``overlap_seconds`` (default a day)."""
        return Call(SecretRotated, tenant, client_id,
                    json=body(overlap_seconds=overlap_seconds))
