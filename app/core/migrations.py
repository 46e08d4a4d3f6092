"""Running Alembic from the service and the CLI, and checking the schema is at head."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(settings: Settings, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url or settings.effective_admin_database_url
    config.attributes["owner_role"] = settings.db_owner_role
    config.attributes["app_role"] = settings.db_app_role
    return config


@dataclass(frozen=True)
class Revisions:
    """This release's migrations: its head, and every revision it knows, for telling a
    schema that is behind (a known ancestor of head) from one an upgrade already moved
    ahead (unknown here)."""

    head: str | None
    known: frozenset[str]


def revisions(settings: Settings) -> Revisions:
    script = ScriptDirectory.from_config(alembic_config(settings))
    return Revisions(script.get_current_head(),
                     frozenset(rev.revision for rev in script.walk_revisions()))


def upgrade(settings: Settings, revision: str = "head", url: str | None = None) -> None:
    """Migrate the schema (synchronous: Alembic drives its own event loop in env.py)."""
    command.upgrade(alembic_config(settings, url), revision)


def downgrade(settings: Settings, revision: str, url: str | None = None) -> None:
    command.downgrade(alembic_config(settings, url), revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        try:
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
        except Exception:
            return None
        row = result.first()
        return str(row[0]) if row else None
