"""Fixtures for the SDK's contract tests: the real service, over real HTTP, on each backend.

``service`` is session-scoped and parametrized, so pytest groups the tests by backend and
starts each backend's service once (SQLite first, then PostgreSQL), stopping the one before.
PostgreSQL must be reachable (``NENTANG_TEST_PG_URL``): if it is not, the fixture errors;
nothing is skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from live_service import BACKENDS, Service, start_service

if TYPE_CHECKING:
    from nentang_sdk import AsyncClient, Client
    from sdk_helpers import Unit


@pytest.fixture(scope="session", params=BACKENDS, ids=BACKENDS)
def service(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    started = start_service(request.param, tmp_path_factory.mktemp(f"service-{request.param}"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def admin(service: Service) -> Iterator[Client]:
    """The platform administrator's client (signed in with client credentials)."""
    from nentang_sdk import Client

    with Client(service.base_url, client_id=service.admin_client_id,
                client_secret=service.admin_client_secret) as c:
        yield c


@pytest.fixture
async def async_admin(service: Service) -> AsyncIterator[AsyncClient]:
    """The platform administrator's asynchronous client."""
    from nentang_sdk import AsyncClient

    async with AsyncClient(service.base_url, client_id=service.admin_client_id,
                           client_secret=service.admin_client_secret) as c:
        yield c


@pytest.fixture
def unit(admin: Client, service: Service) -> Unit:
    """A fresh unit (a province under the root) with a tenant_admin API client."""
    from sdk_helpers import new_unit

    return new_unit(admin, service)


@pytest.fixture
def nt(unit: Unit) -> Iterator[Client]:
    """That unit's client."""
    with unit.client() as client:
        yield client
