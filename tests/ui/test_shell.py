"""Signing in, the shell's security headers, and the unit tree in a real browser."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.ui.browser import screenshot, sign_in
from tests.ui.conftest import UiService


def test_sign_in_and_create_a_commune_with_its_admin(page: Page, ui_service: UiService) -> None:
    sign_in(page, ui_service.base_url, ui_service.root, ui_service.username, ui_service.password)
    page.goto(f"{ui_service.base_url}/admin#/{ui_service.root}/units")
    expect(page.get_by_role("heading", level=1)).to_contain_text(ui_service.root)
    screenshot(page, "01-units")
