"""Readiness during a rolling upgrade: the previous release keeps serving on a schema the
next release's expand step moved ahead, and a release never serves on a schema behind it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import text

from app.config import Settings
from app.core import migrations
from app.core.health import schema_check
from app.main import create_app

HEAD = "0015"


def test_schema_check_tells_ahead_from_behind() -> None:
    known = frozenset({"0014", HEAD})
    assert schema_check(HEAD, HEAD, known) == "ok"
    assert schema_check("0016_next_release", HEAD, known) == "ok"
    assert schema_check("0014", HEAD, known).startswith("behind: at 0014")
    assert schema_check(None, HEAD, known).startswith("not migrated")


async def _readyz_at(tmp_path: Path, revision: str | None) -> httpx.Response:
    """Readiness of a fresh app on a SQLite file migrated to head, then relabelled."""
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db",
                        auto_migrate=False)
    await asyncio.to_thread(migrations.upgrade, settings)
    app = create_app(settings)
    try:
        if revision is not None:
            async with app.state.db.engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = :v"),
                                   {"v": revision})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/readyz")
    finally:
        await app.state.db.dispose()


async def test_ready_at_head(tmp_path: Path) -> None:
    response = await _readyz_at(tmp_path, None)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_ready_on_a_newer_releases_schema(tmp_path: Path) -> None:
    response = await _readyz_at(tmp_path, "0099_next_release_expand")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["migrations"] == "ok"
    assert checks["schema"] == "ahead at 0099_next_release_expand (a newer release's migration)"


async def test_not_ready_on_a_schema_behind_this_release(tmp_path: Path) -> None:
    previous = sorted(migrations.revisions(Settings(data_dir=tmp_path)).known)[-2]
    response = await _readyz_at(tmp_path, previous)
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"].startswith(f"behind: at {previous}")
