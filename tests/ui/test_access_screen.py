"""Users, roles and grants in a real browser: the screen offers an official only what the API
would accept from them (no escalation), and the API refuses the rest anyway."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.ui import scenario
from tests.ui.browser import ConsoleWatch, new_page, screenshot, session_token, sign_in
from tests.ui.conftest import UiService

#: A personnel officer's custom role: manages accounts, nothing about forms or cases.
PERSONNEL = ["tenants:read", "users:read", "users:write", "roles:read", "roles:write",
             "grants:read", "grants:write"]


def test_a_personnel_officer_is_offered_only_what_they_hold(page: Page,
                                                            ui_service: UiService) -> None:
    unit = scenario.new_code("TINH")
    with ui_service.admin() as admin:
        admin.tenants.create(code=unit, name="Tỉnh Nhân Sự", kind="province",
                             parent=ui_service.root)
        admin.roles.create(unit, key="to_chuc_can_bo", name="Tổ chức cán bộ",
                           permissions=PERSONNEL)
        admin.users.create(unit, username="can.bo.tccb", display_name="Cán bộ TCCB",
                           password="Mat-khau-TCCB-2026", roles=["to_chuc_can_bo"])
    sign_in(page, ui_service.base_url, unit, "can.bo.tccb", "Mat-khau-TCCB-2026")
    nav = page.get_by_role("navigation", name="Chức năng")
    expect(nav.get_by_role("link", name="Người dùng và quyền")).to_be_visible()
    for hidden in ("Biểu mẫu", "Quy trình", "Báo cáo", "Nhật ký", "Hồ sơ cần xử lý"):
        expect(nav.get_by_role("link", name=hidden)).to_have_count(0)

    # A new user may get only roles no stronger than the officer's own: here, only it.
    page.goto(f"{ui_service.base_url}/admin#/{unit}/access/users")
    expect(page.get_by_role("heading", name="Thêm người dùng")).to_be_visible()
    offered = page.locator("input[name=roles]").evaluate_all("els => els.map(e => e.value)")
    assert offered == ["to_chuc_can_bo"]
    # The tabs work from the keyboard: an arrow key picks the next one and keeps the focus.
    page.get_by_role("tab", name="Người dùng").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Vai trò")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab", name="Vai trò")).to_be_focused()
    # A custom role may hold only permissions the officer holds.
    page.goto(f"{ui_service.base_url}/admin#/{unit}/access/roles")
    expect(page.get_by_role("heading", name="Tạo vai trò riêng")).to_be_visible()
    checklist = page.locator("#permission-checklist input[name=permissions]")
    assert sorted(checklist.evaluate_all("els => els.map(e => e.value)")) == sorted(PERSONNEL)
    page.get_by_label("Mã vai trò").fill("van_thu")
    page.get_by_label(re.compile("^Tên")).fill("Văn thư")
    page.get_by_label("users:read").check()
    page.get_by_role("button", name="Tạo").click()
    expect(page.get_by_role("table")).to_contain_text("van_thu")
    screenshot(page, "70-access-roles")
    # Grants: only grantable roles, on nodes where the officer may grant.
    page.goto(f"{ui_service.base_url}/admin#/{unit}/access/grants")
    expect(page.get_by_role("heading", name="Giao quyền")).to_be_visible()
    role_picker = page.get_by_label(re.compile("^Vai trò"))
    roles = role_picker.evaluate("s => [...s.options].map(o => o.value)")
    assert "tenant_admin" not in roles and "platform_admin" not in roles

    # What the screen never offers, the API refuses: the same token asks for more.
    token = session_token(page)
    stronger = httpx.post(f"{ui_service.base_url}/api/v1/tenants/{unit}/roles",
                          headers={"Authorization": f"Bearer {token}"},
                          json={"key": "leo_thang", "name": "Leo thang",
                                "permissions": ["forms:write"]})
    assert stronger.status_code == 403
    with ui_service.admin() as admin:
        assert "leo_thang" not in {r.key for r in admin.roles.list(unit)}


def test_an_admin_resets_a_password_and_rotates_a_client_secret(
        page: Page, browser: Browser, console: ConsoleWatch, ui_service: UiService) -> None:
    unit = scenario.new_code("TINH")
    with ui_service.admin() as admin:
        admin.tenants.create(code=unit, name="Tỉnh Tài Khoản", kind="province",
                             parent=ui_service.root)
    sign_in(page, ui_service.base_url, ui_service.root, ui_service.username, ui_service.password)

    # A new officer: the generated password is shown once; a reset gives another one.
    page.goto(f"{ui_service.base_url}/admin#/{unit}/access/users")
    page.get_by_label(re.compile("^Tên đăng nhập")).fill("chuyen.vien")
    page.get_by_label(re.compile("^Họ và tên")).fill("Chuyên viên Một")
    page.locator("input[name=roles][value=officer]").check()
    page.get_by_role("button", name="Tạo").click()
    expect(page.locator(".one-time")).to_contain_text("Mật khẩu ban đầu")
    page.get_by_role("button", name="Đặt lại mật khẩu của chuyen.vien").click()
    expect(page.locator(".one-time")).to_contain_text("Mật khẩu mới của chuyen.vien")
    password = page.locator(".one-time code").inner_text()
    officer = new_page(browser, console)
    sign_in(officer, ui_service.base_url, unit, "chuyen.vien", password)
    expect(officer.locator("#who")).to_have_text("chuyen.vien")
    officer.context.close()

    # An API client: created with its secret shown once, then a new secret.
    page.goto(f"{ui_service.base_url}/admin#/{unit}/access/clients")
    page.get_by_label(re.compile("^Tên")).fill("Hệ thống một cửa")
    page.locator("input[name=client_roles][value=api_client]").check()
    page.get_by_role("button", name="Tạo").click()
    expect(page.locator(".one-time code")).not_to_be_empty()
    page.get_by_role("button", name="Cấp khoá bí mật mới cho Hệ thống một cửa").click()
    expect(page.locator(".one-time")).to_contain_text("Khoá bí mật")
    secret = page.locator(".one-time code").inner_text()
    client_id = page.get_by_role("row").filter(has_text="Hệ thống một cửa").locator(
        "code").inner_text()
    screenshot(page, "71-access-clients")
    issued = httpx.post(f"{ui_service.base_url}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert issued.status_code == 200, issued.text
