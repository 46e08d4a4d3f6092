"""Driving the web UI in a real browser: Debian's Chromium under Playwright for Python.

Playwright's own browser download does not work on the project's machines (and CI must not
fetch a browser), so the tests launch the system Chromium (``NENTANG_TEST_CHROMIUM``, default
``/usr/bin/chromium``; ``make test`` installs it). A missing browser is an error, never a skip.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, expect

CHROMIUM = os.environ.get("NENTANG_TEST_CHROMIUM", "/usr/bin/chromium")
#: Chromium's own background traffic is refused on a closed network; without these flags it
#: retries many connections at every start.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Where the main screens are saved for reviewers (a CI artefact, named in the README).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui-screenshots"
#: Browsers log a failed request as a console error; those answers are what some tests expect.
_EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of "
                               r"(4\d\d)")


@dataclass
class ConsoleWatch:
    """JavaScript errors and Content-Security-Policy violations seen on the service's own
    pages (``origin``); another site's pages, such as an identity provider's, are theirs."""

    origin: str
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self._record(page, f"uncaught: {exc}"))
        page.on("console", lambda message: self._console(page, message))

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        if message.type == "error" and not _EXPECTED_CONSOLE.search(message.text):
            self._record(page, message.text)

    def _record(self, page: Page, error: str) -> None:
        if page.url.startswith(self.origin):
            self.errors.append(error)


def screenshot(page: Page, name: str) -> None:
    """Save the whole page as ``<name>.png`` among the CI artefacts."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def sign_in(page: Page, base_url: str, unit: str, username: str, password: str,
            totp: str | None = None) -> None:
    """Open /admin, sign in on the platform's sign-in page, and wait for the shell."""
    page.goto(f"{base_url}/admin")
    page.wait_for_url(re.compile(r"/oauth/authorize\?"))
    page.get_by_label(re.compile("Mã đơn vị|Unit code")).first.fill(unit)
    page.get_by_label(re.compile("Tên đăng nhập|Username")).fill(username)
    page.get_by_label(re.compile("Mật khẩu|Password")).fill(password)
    if totp is not None:
        page.get_by_label(re.compile("TOTP")).fill(totp)
    page.get_by_role("button", name=re.compile("^(Đăng nhập|Sign in)$")).click()
    page.wait_for_url(re.compile(r"/admin#/"))
    expect(page.locator("#who")).to_be_visible()


def new_page(browser: Browser, console: ConsoleWatch) -> Page:
    """A page in a fresh browser context (its own storage: another official's session),
    Vietnamese, a laptop's screen, watched by ``console``. The caller closes its context."""
    context = browser.new_context(locale="vi-VN", viewport={"width": 1366, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    console.attach(opened)
    return opened


def session_token(page: Page) -> str:
    """The access token the signed-in page holds (what a signing plug-in on the official's
    machine would use)."""
    token: str = page.evaluate("JSON.parse(sessionStorage.getItem('nentang.session')).access")
    return token
