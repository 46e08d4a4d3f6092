"""Data services a unit publishes to other platforms, whom it trusts to call them, and the
remote lookups that prefill its forms.

A ``data_service`` is a named, numbered, immutable description of a query over the unit's
cases or submissions (and its units' below): which form, which fields are exposed, which
may be filtered on, which consumer subsystems may call it, and how much personal data it
may carry. ``gateway_trusts`` say which gateway signs the calls that reach the unit (its
token issuer, audience and public keys), inherited down the tree.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONDocument, TenantOwned, Timestamped, UTCDateTime, new_id, utcnow


class DataService(TenantOwned, Timestamped, Base):
    __tablename__ = "data_services"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        Index("uq_data_services_version", "tenant_id", "name", "version", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    form: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[str]] = mapped_column(JSONDocument)
    filters: Mapped[list[str]] = mapped_column(JSONDocument)
    consumers: Mapped[list[str]] = mapped_column(JSONDocument)
    personal_data: Mapped[str] = mapped_column(String(16), default="none")


class GatewayTrust(TenantOwned, Timestamped, Base):
    __tablename__ = "gateway_trusts"
    __tenant_visibility__: ClassVar[str] = "inherited"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    issuer: Mapped[str] = mapped_column(String(500))
    audience: Mapped[str] = mapped_column(String(500))
    keys: Mapped[dict[str, Any]] = mapped_column()  # a JWKS of public keys
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lookup(TenantOwned, Timestamped, Base):
    __tablename__ = "lookups"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        Index("uq_lookups_name", "tenant_id", "name", unique=True),
    )
    __tenant_visibility__: ClassVar[str] = "inherited"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    form: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
