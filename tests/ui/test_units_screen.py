"""The unit tree in a real browser: what a commune inherits from its province, and
suspending and resuming a unit (with the If-Match the API wants)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.ui import scenario
from tests.ui.browser import screenshot, sign_in
from tests.ui.conftest import UiService


def test_a_commune_shows_what_it_inherits_and_can_be_suspended_and_resumed(
        page: Page, ui_service: UiService) -> None:
    province = scenario.province(ui_service)
    commune = scenario.commune(ui_service, province)
    sign_in(page, ui_service.base_url, ui_service.root, ui_service.username, ui_service.password)
    page.goto(f"{ui_service.base_url}/admin#/{commune.code}/units")

    inherits = page.get_by_role("region", name="Đơn vị đang dùng")
    forms = inherits.get_by_role("table").first
    expect(forms.get_by_role("row").filter(has_text=scenario.FORM)).to_contain_text(
        f"Kế thừa từ {province}")
    expect(inherits).to_contain_text(f"Nhà cung cấp pkcs12, cấu hình của {province}")
    current = page.get_by_role("navigation", name="Cây đơn vị").locator("[aria-current=true]")
    expect(current).to_have_attribute("href", f"#/{commune.code}/units")
    screenshot(page, "04-unit-inherits")

    page.get_by_role("button", name="Tạm ngừng đơn vị").click()
    expect(page.locator("#unit-status")).to_have_text("Tạm ngừng")
    with ui_service.admin() as admin:
        assert admin.tenants.get(commune.code).status == "suspended"
    page.get_by_role("button", name="Cho hoạt động trở lại").click()
    expect(page.locator("#unit-status")).to_have_text("Đang hoạt động")
    with ui_service.admin() as admin:
        assert admin.tenants.get(commune.code).status == "active"
