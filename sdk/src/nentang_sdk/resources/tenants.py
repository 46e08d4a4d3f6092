"""Units of the administrative tree: the ministry, provinces, communes, agencies."""

from __future__ import annotations

from typing import Any

from nentang_sdk._core import Call, M, Resource, body, op, paged
from nentang_sdk.models import Tenant, TenantCreated


class Tenants(Resource[M]):
    @paged("GET /api/v1/tenants")
    def list(self, *, limit: int | None = None) -> Call[Tenant]:
        """The units the caller can see."""
        return Call(Tenant, params={"limit": limit})

    @op("GET /api/v1/tenants/{tenant}")
    def get(self, tenant: str, /) -> Call[Tenant]:
        return Call(Tenant, tenant)

    @paged("GET /api/v1/tenants/{tenant}/children")
    def children(self, tenant: str, /, *, recursive: bool | None = None,
                 limit: int | None = None) -> Call[Tenant]:
        """Units directly under ``tenant`` (``recursive=True``: the whole subtree)."""
        return Call(Tenant, tenant, params={"recursive": recursive, "limit": limit})

    @op("POST /api/v1/tenants")
    def create(self, *, code: str, name: str, kind: str, parent: str,
               admin: dict[str, Any] | None = None,
               idempotency_key: str | None = None) -> Call[TenantCreated]:
        """Create a unit under ``parent``, optionally with its first administrator (``admin``:
        ``username``, ``display_name``, ``email``, ``password``...). The administrator's
        initial password is in the answer, once. Safe to retry: the same idempotency key is
        sent on every attempt."""
        return Call(TenantCreated, json=body(code=code, name=name, kind=kind, parent=parent,
                                             admin=admin),
                    create=True, idempotency_key=idempotency_key)

    @op("PATCH /api/v1/tenants/{tenant}")
    def update(self, tenant: str, /, *, name: str | None = None, status: str | None = None,
               if_match: str | None = None) -> Call[Tenant]:
        """Rename a unit, or suspend (``status="suspended"``) or reactivate it."""
        headers = {"If-Match": if_match} if if_match else None
        return Call(Tenant, tenant, json=body(name=name, status=status), headers=headers)
