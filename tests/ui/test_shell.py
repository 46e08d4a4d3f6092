"""Signing in (local accounts, with TOTP), the language switch, and the accessibility basics
of every screen, in a real browser."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pyotp
from playwright.sync_api import Page, expect

from tests.ui import scenario
from tests.ui.browser import screenshot, sign_in
from tests.ui.conftest import UiService

#: Every visible form control must have an accessible name (a label, aria-label or
#: aria-labelledby); returns the ones that have none.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML.slice(0, 120))"""
#: Errors shown next to a field must be reachable from it (aria-describedby).
UNTIED_ERRORS = """() => [...document.querySelectorAll('.field-error:not([hidden])')]
  .filter((error) => !document.querySelector(`[aria-describedby~="${error.id}"]`))
  .map((error) => error.id)"""


def test_an_admin_with_totp_is_asked_for_the_code(page: Page, ui_service: UiService) -> None:
    with ui_service.admin() as admin:
        created = admin.users.create(ui_service.root, username="quantri.totp",
                                     display_name="Quản trị có TOTP", password="Mat-khau-2026",
                                     totp_required=True, roles=["auditor"])
    assert created.totp_uri is not None
    secret = parse_qs(urlsplit(created.totp_uri).query)["secret"][0]

    page.goto(f"{ui_service.base_url}/admin")
    page.get_by_label("Mã đơn vị").first.fill(ui_service.root)
    page.get_by_label("Tên đăng nhập").fill("quantri.totp")
    page.get_by_label("Mật khẩu").fill("Mat-khau-2026")
    page.get_by_role("button", name="Đăng nhập", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Nhập mã xác thực 6 số")
    code_input = page.get_by_label("Mã xác thực (TOTP)")
    expect(code_input).to_have_attribute("aria-invalid", "true")
    screenshot(page, "00-sign-in-totp")
    page.get_by_label("Mật khẩu").fill("Mat-khau-2026")
    code_input.fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Đăng nhập", exact=True).click()
    page.wait_for_url(re.compile(r"/admin#/"))
    expect(page.locator("#who")).to_have_text("quantri.totp")
    # An auditor sees the audit trail and can check the chain, and nothing it may not use.
    nav = page.get_by_role("navigation", name="Chức năng")
    expect(nav.get_by_role("link", name="Nhật ký")).to_be_visible()
    expect(nav.get_by_role("link", name="Biểu mẫu")).to_have_count(0)
    nav.get_by_role("link", name="Nhật ký").click()
    page.get_by_role("button", name="Kiểm tra tính toàn vẹn").click()
    expect(page.locator("#verify-result")).to_contain_text("Chuỗi nhật ký toàn vẹn")
    screenshot(page, "60-audit")


def test_english_is_one_switch_away_and_sticks_to_sign_in(page: Page,
                                                         ui_service: UiService) -> None:
    sign_in(page, ui_service.base_url, ui_service.root, ui_service.username, ui_service.password)
    page.get_by_label("Ngôn ngữ").select_option("en")
    nav = page.get_by_role("navigation", name="Sections")
    expect(nav.get_by_role("link", name="Units")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You have signed out.")).to_be_visible()
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_label("Unit code").first).to_be_visible()


def test_every_screen_labels_its_controls_and_the_keyboard_reaches_the_content(
        page: Page, ui_service: UiService) -> None:
    sign_in(page, ui_service.base_url, ui_service.root, ui_service.username, ui_service.password)
    expect(page.get_by_role("heading", level=1)).to_be_focused()  # a new screen announces itself
    page.evaluate("document.activeElement.blur()")  # from the top of the page
    page.keyboard.press("Tab")
    skip = page.get_by_role("button", name="Bỏ qua, đến nội dung chính")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0  # shown once focused
    page.keyboard.press("Enter")
    expect(page.locator("main h1")).to_be_focused()
    province = scenario.province(ui_service)  # a form and a workflow to open in the editors
    screens = [f"{ui_service.root}/{screen}" for screen in (
        "inbox", "units", "access/users", "access/roles", "access/grants", "access/clients",
        "forms", "workflows", "reports", "audit")]
    screens += [f"{province}/forms/{scenario.FORM}", f"{province}/workflows/{scenario.WORKFLOW}"]
    for screen in screens:
        page.goto(f"{ui_service.base_url}/admin#/{screen}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.locator(".loading")).to_have_count(0)
        assert page.evaluate(UNLABELLED) == [], screen
        assert page.evaluate(UNTIED_ERRORS) == [], screen
        for tab in page.get_by_role("tab").all():  # every tab of an editor, too
            tab.click()
            assert page.evaluate(UNLABELLED) == [], f"{screen}, {tab.inner_text()}"
    page.goto(f"{ui_service.base_url}/admin#/{ui_service.root}/units")
    page.get_by_role("button", name="Tạo đơn vị").click()  # empty: errors on the fields
    expect(page.get_by_label(re.compile("^Mã đơn vị"))).to_have_attribute("aria-invalid", "true")
    assert page.evaluate(UNTIED_ERRORS) == []
    screenshot(page, "01-units-errors")
