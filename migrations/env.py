"""Alembic environment: async engines for SQLite and PostgreSQL.

On PostgreSQL, migrations run as the schema owner role (``SET ROLE``), so the tables belong to
it and never to the service's role.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.core.db import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            owner = config.attributes["owner_role"]
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": owner}
            )
            if not exists:
                raise SystemExit(
                    f"PostgreSQL role '{owner}' does not exist: run `nentang db create-roles` "
                    "first."
                )
            await connection.execute(text(f'SET ROLE "{owner}"'))
            await connection.commit()
        await connection.run_sync(_run)
    await engine.dispose()


def run_migrations_online() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported.")
run_migrations_online()
