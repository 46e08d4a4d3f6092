"""Fixtures of the browser tests: the real service (``nentang serve`` over HTTP, as in the
SDK's contract tests) on each backend, one Chromium per module, and a fresh browser context
per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, ConsoleWatch, new_page

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk" / "tests"))
from live_service import BACKENDS, Service, start_service
from nentang_sdk import Client

ADMIN_USERNAME = "quantri"
ADMIN_PASSWORD = "Mat-khau-quan-tri-2026"


@dataclass(frozen=True)
class UiService:
    """The service, its root unit and a local administrator who signs in through the UI."""

    service: Service
    username: str = ADMIN_USERNAME
    password: str = ADMIN_PASSWORD

    @property
    def base_url(self) -> str:
        return self.service.base_url

    @property
    def root(self) -> str:
        return self.service.root

    def admin(self) -> Client:
        """The platform's API client (client credentials), as a local system would call."""
        return Client(self.base_url, client_id=self.service.admin_client_id,
                      client_secret=self.service.admin_client_secret)


@pytest.fixture(scope="session", params=BACKENDS, ids=BACKENDS)
def ui_service(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiService]:
    """The service on a SQLite file, then on PostgreSQL (a fresh database and roles, served as
    the unprivileged role): every browser test runs on both."""
    started = start_service(request.param, tmp_path_factory.mktemp(f"ui-{request.param}"))
    try:
        ui = UiService(started)
        with ui.admin() as admin:
            admin.users.create(started.root, username=ADMIN_USERNAME,
                               display_name="Quản trị viên Bộ", password=ADMIN_PASSWORD,
                               roles=["tenant_admin"])
        yield ui
    finally:
        started.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Per module, not per session: while Playwright's synchronous API runs, its event loop
    counts as running in this thread, which breaks the asyncio tests of other modules."""
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: install Debian's chromium package "
                    "(make test does), or set NENTANG_TEST_CHROMIUM.")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def console(ui_service: UiService) -> ConsoleWatch:
    return ConsoleWatch(ui_service.base_url)


@pytest.fixture
def page(browser: Browser, console: ConsoleWatch) -> Iterator[Page]:
    """A page in a fresh context (no shared storage), Vietnamese, a laptop's screen. The test
    fails if the page logged a JavaScript error or a CSP violation."""
    opened = new_page(browser, console)
    yield opened
    opened.context.close()
    assert console.errors == [], console.errors
