from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, Timestamped, new_id


class PrincipalKind(StrEnum):
    CLIENT = "client"


class PrincipalStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Principal(TenantOwned, Timestamped, Base):
    """Anyone who can hold grants. API clients now; users join with the identity issue.

    ``tenant_id`` is the principal's home tenant.
    """

    __tablename__ = "principals"
    __table_args__ = (
        CheckConstraint("kind IN ('client')", name="kind"),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=PrincipalStatus.ACTIVE.value)


class ApiClient(TenantOwned, Timestamped, Base):
    """OAuth2 client-credentials client. The secret is stored only as a SHA-256 digest: it is
    256 random bits, so a slow password KDF would add latency without adding safety."""

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


class RoleGrant(TenantOwned, Timestamped, Base):
    """A role held by a principal at a tenant node, covering that node's subtree.

    The row lives in the principal's home tenant; ``node_id`` is that tenant or one of its
    descendants.
    """

    __tablename__ = "role_grants"
    __tenant_references__ = ("node_id",)
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "principal_id"], ["principals.tenant_id", "principals.id"]
        ),
        UniqueConstraint("tenant_id", "principal_id", "role", "node_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    principal_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    role: Mapped[str] = mapped_column(String(64))
    node_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"), index=True)
