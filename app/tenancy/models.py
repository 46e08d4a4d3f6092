from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, PathString, Timestamped, new_id, utcnow


class TenantKind(StrEnum):
    MINISTRY = "ministry"
    PROVINCE = "province"
    COMMUNE = "commune"
    AGENCY = "agency"


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


# Which kinds may sit directly under which. The root of a platform is a ministry.
ALLOWED_CHILD_KINDS: dict[TenantKind, frozenset[TenantKind]] = {
    TenantKind.MINISTRY: frozenset({TenantKind.PROVINCE, TenantKind.AGENCY}),
    TenantKind.PROVINCE: frozenset({TenantKind.COMMUNE, TenantKind.AGENCY}),
    TenantKind.COMMUNE: frozenset({TenantKind.AGENCY}),
    TenantKind.AGENCY: frozenset({TenantKind.AGENCY}),
}


class Tenant(Timestamped, Base):
    """A node of the tenant tree.

    ``path`` is the materialised path of ids from the root, ``/<root>/<...>/<self>/``. The
    subtree of a node is the half-open range ``[path, path_upper(path))`` and its ancestors are
    the ids in its path, so both are one indexed query. Ids never change; codes may (a merge
    keeps the old code as a redirect), which is why the path is built from ids.
    """

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("kind IN ('ministry', 'province', 'commune', 'agency')", name="kind"),
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        Index("ix_tenants_parent_id_code", "parent_id", "code"),
        # The few suspended tenants, which every request checks its grants' paths against.
        Index("ix_tenants_suspended_path", "path", postgresql_where=text("status <> 'active'"),
              sqlite_where=text("status <> 'active'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TenantStatus.ACTIVE.value)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tenants.id"))
    path: Mapped[str] = mapped_column(PathString, unique=True)
    depth: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (read once by the mapper)

    @property
    def ancestor_ids(self) -> list[uuid.UUID]:
        """Ids from the root down to the parent."""
        return [uuid.UUID(part) for part in self.path.strip("/").split("/")[:-1]]


def child_path(parent_path: str, child_id: uuid.UUID) -> str:
    return f"{parent_path}{child_id}/"


def parent_path(path: str) -> str:
    """``/a/b/c/`` -> ``/a/b/``."""
    return path[: path.rstrip("/").rfind("/") + 1]


def path_upper(prefix: str) -> str:
    """Smallest string greater than every string that starts with ``prefix``.

    Paths hold only hex digits, dashes and slashes, so bumping the final ``/`` to ``0``
    (the next byte) bounds the subtree.
    """
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
