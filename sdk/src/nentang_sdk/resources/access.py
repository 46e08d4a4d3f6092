"""People and permissions in a unit: users, roles and the grants that give roles to users
and API clients (a grant on a unit reaches its whole subtree)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from nentang_sdk._core import NO_CONTENT, Call, M, Resource, body, op, paged
from nentang_sdk.models import (
    BulkResult,
    Grant,
    PasswordReset,
    Role,
    TotpEnrolment,
    User,
    UserCreated,
)
from nentang_sdk.resources._types import ID


class Users(Resource[M]):
    @op("GET /api/v1/me")
    def me(self) -> Call[dict[str, Any]]:
        """Who the caller is: principal, unit, roles and effective permissions."""
        return Call(dict[str, Any])

    @paged("GET /api/v1/tenants/{tenant}/users")
    def list(self, tenant: str, /, *, limit: int | None = None) -> Call[User]:
        return Call(User, tenant, params={"limit": limit})

    @op("GET /api/v1/tenants/{tenant}/users/{user_id}")
    def get(self, tenant: str, user_id: ID, /) -> Call[User]:
        return Call(User, tenant, user_id)

    @op("POST /api/v1/tenants/{tenant}/users")
    def create(self, tenant: str, /, *, username: str, display_name: str,
               email: str | None = None, external_id: str | None = None,
               password: str | None = None, totp_required: bool | None = None,
               roles: Sequence[str] | None = None,
               idempotency_key: str | None = None) -> Call[UserCreated]:
        """Create a local account; without ``password`` the service generates one and returns
        it once. ``roles`` are granted on this unit."""
        return Call(UserCreated, tenant, json=body(
            username=username, display_name=display_name, email=email,
            external_id=external_id, password=password, totp_required=totp_required,
            roles=builtins.list(roles) if roles is not None else None),
            create=True, idempotency_key=idempotency_key)

    @op("POST /api/v1/tenants/{tenant}/users/bulk")
    def bulk_create(self, tenant: str, /, *, csv: str | bytes | None = None,
                    users: Sequence[Mapping[str, Any]] | None = None) -> Call[BulkResult]:
        """Create many users from CSV text (header ``username,display_name,email,...``) or a
        list of user objects; the answer has one result per row."""
        if (csv is None) == (users is None):
            raise ValueError("give exactly one of csv= or users=")
        if csv is not None:
            data = csv.encode() if isinstance(csv, str) else csv
            return Call(BulkResult, tenant, content=data, headers={"Content-Type": "text/csv"})
        return Call(BulkResult, tenant, json={"users": [dict(u) for u in users or []]})

    @op("PATCH /api/v1/tenants/{tenant}/users/{user_id}")
    def update(self, tenant: str, user_id: ID, /, *, display_name: str | None = None,
               email: str | None = None, external_id: str | None = None,
               status: str | None = None, totp_required: bool | None = None) -> Call[User]:
        """Change a user; ``status="disabled"`` locks the account out."""
        return Call(User, tenant, user_id, json=body(
            display_name=display_name, email=email, external_id=external_id, status=status,
            totp_required=totp_required))

    @op("POST /api/v1/tenants/{tenant}/users/{user_id}/password")
    def reset_password(self, tenant: str, user_id: ID, /, *,
                       password: str | None = None) -> Call[PasswordReset]:
        """Set a new password (or have one generated, returned once)."""
        return Call(PasswordReset, tenant, user_id, json=body(password=password))

    @op("POST /api/v1/tenants/{tenant}/users/{user_id}/totp")
    def enrol_totp(self, tenant: str, user_id: ID, /) -> Call[TotpEnrolment]:
        """Start TOTP enrolment: the answer holds the secret and its ``otpauth://`` URI."""
        return Call(TotpEnrolment, tenant, user_id)


class Roles(Resource[M]):
    @op("GET /api/v1/tenants/{tenant}/roles")
    def list(self, tenant: str, /) -> Call[builtins.list[Role]]:
        """Built-in roles and this unit's custom roles (with those it inherits)."""
        return Call(builtins.list[Role], tenant)

    @op("GET /api/v1/tenants/{tenant}/roles/{key}")
    def get(self, tenant: str, key: str, /) -> Call[Role]:
        return Call(Role, tenant, key)

    @op("POST /api/v1/tenants/{tenant}/roles")
    def create(self, tenant: str, /, *, key: str, name: str, permissions: Sequence[str],
               description: str | None = None) -> Call[Role]:
        """A custom role from permissions the caller holds (no escalation)."""
        return Call(Role, tenant, json=body(key=key, name=name, description=description,
                                            permissions=builtins.list(permissions)))

    @op("PUT /api/v1/tenants/{tenant}/roles/{key}")
    def update(self, tenant: str, key: str, /, *, name: str, permissions: Sequence[str],
               description: str | None = None) -> Call[Role]:
        return Call(Role, tenant, key, json=body(name=name, description=description,
                                                 permissions=builtins.list(permissions)))

    @op("DELETE /api/v1/tenants/{tenant}/roles/{key}")
    def delete(self, tenant: str, key: str, /) -> Call[None]:
        return Call(NO_CONTENT, tenant, key)


class Grants(Resource[M]):
    @paged("GET /api/v1/tenants/{tenant}/grants")
    def list(self, tenant: str, /, *, principal_id: ID | None = None,
             recursive: bool | None = None, limit: int | None = None) -> Call[Grant]:
        return Call(Grant, tenant, params={
            "principal_id": str(principal_id) if principal_id else None,
            "recursive": recursive, "limit": limit})

    @op("POST /api/v1/tenants/{tenant}/grants")
    def create(self, tenant: str, /, *, principal_id: ID, role: str) -> Call[Grant]:
        """Give ``role`` on this unit (and its subtree) to a user or API client."""
        return Call(Grant, tenant, json={"principal_id": str(principal_id), "role": role})

    @op("DELETE /api/v1/tenants/{tenant}/grants/{grant_id}")
    def revoke(self, tenant: str, grant_id: ID, /) -> Call[None]:
        return Call(NO_CONTENT, tenant, grant_id)
