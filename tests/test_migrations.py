from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401
from app.config import Settings
from app.core import migrations
from app.core.db import Base
from tests.conftest import Backend


def _compare(sync: Any) -> list[Any]:
    with warnings.catch_warnings():
        # SQLite has no full-text expression index to compare (the model declares it for
        # PostgreSQL only); alembic says so with a warning.
        warnings.filterwarnings("ignore", message=".*expression-based index 'ix_submissions_")
        return compare_metadata(  # type: ignore[no-any-return]
            MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata)


async def test_models_and_migrations_agree(backend: Backend) -> None:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            diff: list[Any] = await conn.run_sync(_compare)
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db")
    migrations.upgrade(settings)
    assert set(Base.metadata.tables) <= _tables(settings.effective_database_url)
    migrations.downgrade(settings, "base")
    assert _tables(settings.effective_database_url) <= {"alembic_version"}
    migrations.upgrade(settings)
    assert set(Base.metadata.tables) <= _tables(settings.effective_database_url)


def test_every_tenant_owned_table_leads_its_primary_key_with_tenant_id() -> None:
    for table in Base.metadata.sorted_tables:
        if "tenant_id" in table.c:
            assert table.primary_key.columns.keys()[0] == "tenant_id", table.name


def test_postgresql_downgrade_and_upgrade_round_trip(postgresql_backend: Backend) -> None:
    """Same round trip on a scratch PostgreSQL database, with the RLS objects."""
    from sqlalchemy.engine import make_url

    from app.core.roles import create_roles
    from tests.conftest import pg_admin

    name = f"{make_url(postgresql_backend.superuser_url).database}_rt"
    base = postgresql_backend.settings
    admin_url = make_url(base.effective_admin_database_url).set(database=name)
    app_url = make_url(base.effective_database_url).set(database=name)
    settings = base.model_copy(update={
        "admin_database_url": admin_url.render_as_string(hide_password=False),
        "database_url": app_url.render_as_string(hide_password=False)})
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(create_roles(settings))
        migrations.upgrade(settings)
        migrations.downgrade(settings, "base")
        assert _tables(settings.effective_admin_database_url) <= {"alembic_version"}
        migrations.upgrade(settings)
        assert set(Base.metadata.tables) <= _tables(settings.effective_admin_database_url)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_embedded_default_migrates_itself_on_start(tmp_path: Path) -> None:
    """`nentang serve` on a fresh machine: no database file, no migration step."""
    import httpx

    from app.main import create_app

    settings = Settings(data_dir=tmp_path / "fresh")
    assert settings.should_auto_migrate and settings.is_sqlite
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert (tmp_path / "fresh" / "nentang.db").exists()
    assert (tmp_path / "fresh" / "signing-key.pem").stat().st_mode & 0o077 == 0
