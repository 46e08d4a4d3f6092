"""Engine, sessions and the declarative base shared by every domain.

Every tenant-owned model inherits :class:`TenantOwned`. That mixin is what the scoping
machinery in :mod:`app.tenancy.scope` and the row-level-security migration key on, so a new
table is isolated by declaring it, not by remembering a ``WHERE``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Dialect, MetaData, String, TypeDecorator, Uuid, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

from app.core.logging import quiet_data_loggers

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# Byte-wise ordering on PostgreSQL so that path-prefix range scans use the btree index.
PathString = String(512).with_variant(String(512, collation="C"), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend. SQLite stores no offset and hands
    back naive values; this makes them aware again, so comparisons never mix the two."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONDocument}


class TenantOwned:
    """Mixin for every table whose rows belong to one tenant.

    Rows carry ``tenant_id`` as the first column of their primary key, and foreign keys
    between tenant-owned tables include it, so no row can reference another tenant's row
    and the schema can be distributed by ``tenant_id`` without a rewrite.
    """

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, sort_order=-1)

    # Other columns naming a tenant (e.g. the node a grant applies to). A new row's
    # references must, like its tenant_id, lie inside the writer's scope.
    __tenant_references__: tuple[str, ...] = ()


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE: a write transaction takes the
    # database lock up front instead of failing with SQLITE_BUSY when it first writes.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """``hide_parameters``: a database error never puts values (password hashes, secrets,
    citizens' data) into a log line or an exception message."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False,
        hide_parameters=True,
    )


def on_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def advisory_xact_lock(session: AsyncSession, key: int) -> None:
    """Serialise on ``key`` until the transaction ends. PostgreSQL only: SQLite's write
    transactions (BEGIN IMMEDIATE) are serialised already."""
    if on_postgresql(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def plan_for_each_execution(session: AsyncSession) -> None:
    """Plan the rest of the transaction's statements for their actual parameters.

    The driver keeps statements prepared per connection, and after five executions PostgreSQL
    may switch one to a *generic* plan made without the parameters' values. For a statement
    whose work depends enormously on them (a report over one commune or the whole country)
    that plan can be thousands of times slower: measured, a province report went from 0.6 s
    to 5.5 s on its sixth run, and the national one did not finish. A no-op on SQLite."""
    if on_postgresql(session):
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


class Database:
    """One engine and session factory per process (per app instance)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        quiet_data_loggers()
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    async def dispose(self) -> None:
        await self.engine.dispose()

