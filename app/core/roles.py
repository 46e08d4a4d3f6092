"""``nentang db create-roles``: the two PostgreSQL roles the isolation model relies on.

* the **owner** (``NENTANG_DB_OWNER_ROLE``, default ``nentang_owner``): NOLOGIN; owns the schema.
  Migrations ``SET ROLE`` to it. Tables use FORCE ROW LEVEL SECURITY, so even it is filtered.
* the **service** role (``NENTANG_DB_APP_ROLE``, default ``nentang_app``): LOGIN, NOSUPERUSER,
  NOBYPASSRLS, owns nothing, and gets only the table privileges each migration grants.

Run it once per database as a superuser (through ``NENTANG_ADMIN_DATABASE_URL``); running it
again only re-asserts the attributes and grants.
"""

from __future__ import annotations

import re

from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _quoted(name: str) -> str:
    if not _ROLE_NAME.match(name):
        raise ValueError(f"Role name {name!r} must match {_ROLE_NAME.pattern}")
    return f'"{name}"'


async def create_roles(settings: Settings, app_password: str | None = None) -> list[str]:
    owner, app = _quoted(settings.db_owner_role), _quoted(settings.db_app_role)
    log: list[str] = []
    engine = create_async_engine(settings.effective_admin_database_url, poolclass=pool.NullPool,
                                 isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for name, quoted, attrs in (
                (settings.db_owner_role, owner, "NOLOGIN NOSUPERUSER NOBYPASSRLS"),
                (settings.db_app_role, app,
                 "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"),
            ):
                exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"),
                                           {"n": name})
                verb = "ALTER" if exists else "CREATE"
                await conn.execute(text(f"{verb} ROLE {quoted} {attrs}"))
                log.append(f"{'Updated' if exists else 'Created'} role {name} ({attrs})")
            if app_password:
                await conn.execute(text(f"ALTER ROLE {app} PASSWORD :p"), {"p": app_password})
            database = await conn.scalar(text("SELECT current_database()"))
            await conn.execute(text(f"GRANT {owner} TO CURRENT_USER"))
            await conn.execute(text(f"GRANT USAGE, CREATE ON SCHEMA public TO {owner}"))
            await conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {app}"))
            await conn.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {app}'))
            log.append(f"Granted schema rights in database {database}")
    finally:
        await engine.dispose()
    return log
