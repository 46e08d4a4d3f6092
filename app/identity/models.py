"""Identity tables: principals (users and API clients), custom roles, grants, identity
providers, and the short-lived records of sign-in (authorization codes, refresh tokens,
federated login flows).

Every table is tenant-owned. A principal's rows live in its home tenant; a grant's
``node_id`` is that tenant or one of its descendants. Roles and identity providers are
*inherited*: rows of a tenant's ancestors are readable below it (see
:mod:`app.tenancy.scope`), while writes stay inside the writer's subtree.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    and_,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONDocument, TenantOwned, Timestamped, UTCDateTime, new_id, utcnow


class PrincipalKind(StrEnum):
    CLIENT = "client"
    USER = "user"


class PrincipalStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


def of_principal(owned: Any) -> ColumnElement[bool]:
    """The join condition between the principals table and a row that belongs to a principal
    (a user, an API client, a grant): same tenant, same principal id."""
    return and_(owned.tenant_id == Principal.tenant_id, owned.principal_id == Principal.id)


class Principal(TenantOwned, Timestamped, Base):
    """Anyone who can hold grants: a user or an API client. ``tenant_id`` is its home."""

    __tablename__ = "principals"
    __table_args__ = (
        CheckConstraint("kind IN ('client', 'user')", name="kind"),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=PrincipalStatus.ACTIVE.value)


class User(TenantOwned, Timestamped, Base):
    """An official. Signs in with a local password (the embedded default and break-glass
    administration) or through the tenant's identity provider, matched by ``external_id``."""

    __tablename__ = "users"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "principal_id"], ["principals.tenant_id", "principals.id"]
        ),
        UniqueConstraint("tenant_id", "username"),
        UniqueConstraint("tenant_id", "external_id"),
    )

    principal_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    external_id: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_required: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiClient(TenantOwned, Timestamped, Base):
    """OAuth2 client-credentials client. Secrets are stored only as SHA-256 digests: they are
    256 random bits, so a slow password KDF would add latency without adding safety.

    On rotation the old digest moves to ``previous_secret_hash`` and keeps working until
    ``previous_secret_expires_at`` (the overlap window)."""

    __tablename__ = "api_clients"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "principal_id"], ["principals.tenant_id", "principals.id"]
        ),
    )

    principal_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(128))
    previous_secret_hash: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scopes: Mapped[list[str] | None] = mapped_column(JSONDocument)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Role(TenantOwned, Timestamped, Base):
    """A custom role: a named set of permissions defined by a tenant for its subtree."""

    __tablename__ = "roles"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(1000))
    permissions: Mapped[list[str]] = mapped_column(JSONDocument)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoleGrant(TenantOwned, Timestamped, Base):
    """A role held by a principal at a tenant node, covering that node's subtree.

    The row lives in the principal's home tenant; ``node_id`` is that tenant or one of its
    descendants. A custom role is named by (``role_tenant_id``, ``role``); a built-in role
    has no ``role_tenant_id``.
    """

    __tablename__ = "role_grants"
    __tenant_references__ = ("node_id",)
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "principal_id"], ["principals.tenant_id", "principals.id"]
        ),
        ForeignKeyConstraint(["role_tenant_id", "role"], ["roles.tenant_id", "roles.key"]),
        UniqueConstraint("tenant_id", "principal_id", "role", "node_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    principal_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    role: Mapped[str] = mapped_column(String(64))
    role_tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    node_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"), index=True)
    granted_by: Mapped[str | None] = mapped_column(String(128))


class IdentityProvider(TenantOwned, Timestamped, Base):
    """A tenant's OpenID Connect provider, inherited by every descendant that has none."""

    __tablename__ = "identity_providers"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, default=new_id, unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[str | None] = mapped_column(String(512))
    scopes: Mapped[str] = mapped_column(String(512))
    match_claim: Mapped[str] = mapped_column(String(64))
    jit_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    jit_roles: Mapped[list[str]] = mapped_column(JSONDocument)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginFlow(TenantOwned, Timestamped, Base):
    """A federated sign-in in progress: what we sent the identity provider (state, nonce,
    PKCE verifier) and the platform authorization request to finish afterwards."""

    __tablename__ = "login_flows"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    request: Mapped[dict[str, Any]] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuthorizationCode(TenantOwned, Timestamped, Base):
    """A one-time platform authorization code (RFC 6749 §4.1) bound to a PKCE challenge."""

    __tablename__ = "authorization_codes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "principal_id"], ["principals.tenant_id", "principals.id"]
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(String(1024))
    code_challenge: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str | None] = mapped_column(String(2048))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RefreshToken(TenantOwned, Timestamped, Base):
    """One link of a refresh-token chain. Using a token rotates it (``rotated_at``); presenting
    an already-rotated token revokes the whole ``family_id`` (RFC 9700 §4.14.2)."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "principal_id"], ["principals.tenant_id", "principals.id"]
        ),
        Index("ix_refresh_tokens_tenant_id_family_id", "tenant_id", "family_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    principal_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str | None] = mapped_column(String(2048))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
