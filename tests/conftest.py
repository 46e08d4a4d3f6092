"""Test fixtures: every test that uses ``backend`` runs on a real SQLite file and on a real
PostgreSQL (a fresh database and fresh roles per run). PostgreSQL must be reachable: if it
is not, the fixtures error and the run fails; nothing is skipped.

``NENTANG_TEST_PG_URL`` names the superuser connection used to create the test database
(default ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.core import migrations
from app.core.roles import create_roles
from app.main import create_app

PG_ADMIN_URL = os.environ.get(
    "NENTANG_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Backend:
    name: str
    settings: Settings
    superuser_url: str

    @property
    def is_postgresql(self) -> bool:
        return self.name == "postgresql"

    def superuser_engine(self) -> AsyncEngine:
        """A connection that bypasses every wall, for inspecting and tampering in tests."""
        return create_async_engine(self.superuser_url, poolclass=pool.NullPool)


def _settings(tmp: Path, **kwargs: Any) -> Settings:
    # The test OpenID provider listens on loopback http. The platform administrator's token
    # is fetched once per backend and must outlive that backend's whole run, even on a slow,
    # busy machine: the longest lifetime the service allows.
    return Settings(data_dir=tmp, signing_key_file=tmp / "signing-key.pem",
                    idp_allow_http_loopback=True, access_token_ttl_seconds=3600,
                    # The tests' remote registers and gateways listen on loopback.
                    delivery_allow_private_targets=True,
                    issuer="http://nentang.test", auto_migrate=False, log_json=False, **kwargs)


@pytest.fixture(scope="session")
def sqlite_backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    tmp = tmp_path_factory.mktemp("sqlite")
    settings = _settings(tmp, database_url=f"sqlite+aiosqlite:///{tmp / 'nentang.db'}")
    migrations.upgrade(settings)
    return Backend("sqlite", settings, settings.effective_database_url)


async def pg_admin(sql: str) -> None:
    engine = create_async_engine(PG_ADMIN_URL, poolclass=pool.NullPool,
                                 isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgresql_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    suffix = uuid.uuid4().hex[:10]
    database, owner, app_role = f"nentang_test_{suffix}", f"nt_owner_{suffix}", f"nt_app_{suffix}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{database}"'))
    base = make_url(PG_ADMIN_URL)
    superuser_url = base.set(database=database).render_as_string(hide_password=False)
    app_url = base.set(database=database, username=app_role, password=None).render_as_string(
        hide_password=False)
    tmp = tmp_path_factory.mktemp("pg")
    settings = _settings(tmp, database_url=app_url, admin_database_url=superuser_url,
                         db_owner_role=owner, db_app_role=app_role)
    try:
        asyncio.run(create_roles(settings))
        migrations.upgrade(settings)
        yield Backend("postgresql", settings, superuser_url)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        asyncio.run(pg_admin(f'DROP ROLE IF EXISTS "{app_role}"'))
        asyncio.run(pg_admin(f'DROP ROLE IF EXISTS "{owner}"'))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    found: Backend = request.getfixturevalue(f"{request.param}_backend")
    return found


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="session")
async def app(backend: Backend, spans: InMemorySpanExporter) -> AsyncIterator[Any]:
    # Record spans although no exporter is configured: the tests read them from memory.
    os.environ["OTEL_TRACES_SAMPLER"] = "always_on"
    try:
        application = create_app(backend.settings)
    finally:
        del os.environ["OTEL_TRACES_SAMPLER"]
    application.state.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    yield application
    await application.state.db.dispose()


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://nentang.test") as http:
        yield http


from tests.platform import Platform  # noqa: E402

_platforms: dict[str, Platform] = {}


@pytest.fixture(scope="session")
async def platform(app: Any, client: httpx.AsyncClient, backend: Backend) -> Platform:
    """Bootstrapped once per backend; pytest may rebuild ``app`` when it switches backends,
    so the credentials are kept and re-attached."""
    known = _platforms.get(backend.name)
    if known is None:
        known = _platforms[backend.name] = await Platform.bootstrap(app, client)
    known.app, known.http = app, client
    return known


def only_postgresql() -> Any:
    """Run a test on PostgreSQL only (for features SQLite lacks, such as row-level security)."""
    return pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
