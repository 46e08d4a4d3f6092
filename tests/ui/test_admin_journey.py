"""A new administrator's first day, in a real browser: sign in, create a commune and its
admin, give the commune's staff their roles, then, as the commune's admin, take a case that an
applicant submitted through the API from the inbox to its signed end, read its history and
run a report. The other commune's pages stay closed to them."""

from __future__ import annotations

import base64
import re

from playwright.sync_api import Browser, Page, expect

from tests.pki import build
from tests.ui import scenario
from tests.ui.browser import ConsoleWatch, new_page, screenshot, sign_in
from tests.ui.conftest import UiService
from tests.ui.test_forms_builder import _add as add_field
from tests.ui.test_workflow_designer import design_two_step_workflow

COMMUNE_ADMIN_PASSWORD = "Quan-tri-xa-2026"


def create_province(page: Page, ui_service: UiService) -> str:
    """In the unit tree, under the ministry: a province (its admin can come later)."""
    province = scenario.new_code("TINH")
    page.goto(f"{ui_service.base_url}/admin#/{ui_service.root}/units")
    page.get_by_label("Mã đơn vị").fill(province)
    page.get_by_label("Tên đơn vị").fill("Tỉnh Thử Nghiệm")
    expect(page.get_by_label("Cấp")).to_have_value("province")
    page.get_by_label("Tạo luôn quản trị viên cho đơn vị").uncheck()
    page.get_by_role("button", name="Tạo đơn vị").click()
    expect(page.get_by_role("status")).to_contain_text(f"Đã tạo đơn vị {province}")
    return province


def build_request_form(page: Page, ui_service: UiService, unit: str) -> None:
    """In the form builder: full name, a kind, and a reason asked for (and then required)
    only when the kind is 'khac'; previewed, then published."""
    page.goto(f"{ui_service.base_url}/admin#/{unit}/forms")
    page.get_by_label("Mã biểu mẫu").fill(scenario.FORM)
    page.get_by_label("Tên biểu mẫu (tiếng Việt)").fill("Đơn đề nghị")
    page.get_by_label("Tên biểu mẫu (tiếng Anh)").fill("Request")
    page.locator("#new-form-create").click()
    page.wait_for_url(re.compile(rf"#/{unit}/forms/{scenario.FORM}$"))
    add_field(page, "text", "ho_ten", "Họ và tên", "Full name")
    page.locator("#prop-required").check()
    page.locator("#prop-personal-data").select_option("basic")
    add_field(page, "select", "loai", "Loại đề nghị", "Kind")
    for index, (value, vi, en) in enumerate((("cap_moi", "Cấp mới", "New"),
                                            ("khac", "Khác", "Other"))):
        page.locator(f"#prop-option-{index}-value").fill(value)
        page.locator(f"#prop-option-{index}-value").press("Tab")
        page.locator(f"#prop-option-{index}-vi").fill(vi)
        page.locator(f"#prop-option-{index}-en").fill(en)
    page.locator("#prop-required").check()
    add_field(page, "text", "ly_do", "Lý do", "Reason")
    page.locator("#prop-conditional").check()
    page.locator("#prop-rule-field").select_option("loai")
    page.locator("#prop-rule-value").select_option(label="Khác (khac)")
    page.locator("#prop-required-when-visible").check()
    page.get_by_role("tab", name="Xem trước").click()
    preview = page.locator("#fb-preview")
    expect(preview.get_by_label("Lý do")).to_be_hidden()
    preview.get_by_label("Loại đề nghị").select_option(label="Khác")
    expect(preview.get_by_label("Lý do")).to_be_visible()
    preview.get_by_label("Họ và tên").fill("Nguyễn Văn A")
    page.locator("#fb-preview-check").click()  # the dry run: the reason is now required
    expect(preview.get_by_label("Lý do")).to_have_attribute("aria-invalid", "true")
    page.locator("#fb-publish").click()
    expect(page.locator("#fb-messages")).to_contain_text("Đã ban hành phiên bản v1")


def set_up_signing(unit: str, ui_service: UiService) -> None:
    """The province's software signing key (PKCS#12), set through the API as its IT team
    would; the UI has no signing set-up screen yet."""
    pki = build()
    with ui_service.admin() as admin:
        admin.signing.replace(unit, provider="pkcs12", trust_anchors=[pki.root.pem], config={
            "pkcs12": base64.b64encode(pki.signer.pkcs12(b"mat-khau")).decode(),
            "password": "mat-khau"})


def create_commune(page: Page, ui_service: UiService, province: str) -> tuple[str, str]:
    """In the unit tree, under the province: a commune with its first admin."""
    commune, username = scenario.new_code("XA"), "quantri.xa"
    page.goto(f"{ui_service.base_url}/admin#/{province}/units")
    page.get_by_label("Mã đơn vị").fill(commune)
    page.get_by_label("Tên đơn vị").fill("Xã Thử Nghiệm")
    expect(page.get_by_label("Cấp")).to_have_value("commune")
    page.get_by_label("Tên đăng nhập của quản trị viên").fill(username)
    page.get_by_label("Họ và tên quản trị viên").fill("Nguyễn Thị Quản Trị")
    page.get_by_label("Mật khẩu ban đầu").fill(COMMUNE_ADMIN_PASSWORD)
    page.get_by_role("button", name="Tạo đơn vị").click()
    expect(page.get_by_role("status")).to_contain_text(f"Đã tạo đơn vị {commune}")
    expect(page.get_by_role("navigation", name="Cây đơn vị")).to_contain_text("Xã Thử Nghiệm")
    screenshot(page, "02-unit-created")
    return commune, username


def grant(page: Page, ui_service: UiService, commune: str, role: str) -> None:
    page.goto(f"{ui_service.base_url}/admin#/{commune}/access/grants")
    page.get_by_label("Người được giao").select_option(label="Nguyễn Thị Quản Trị (quantri.xa)")
    page.get_by_label(re.compile("^Vai trò")).select_option(role)
    page.get_by_role("button", name="Giao quyền").click()
    expect(page.get_by_role("table")).to_contain_text(role)


def test_a_new_admin_sets_up_a_service_and_takes_a_case_to_a_signed_decision(
        page: Page, browser: Browser, console: ConsoleWatch, ui_service: UiService) -> None:
    sign_in(page, ui_service.base_url, ui_service.root, ui_service.username,
            ui_service.password)
    province = create_province(page, ui_service)
    build_request_form(page, ui_service, province)
    design_two_step_workflow(page, ui_service, province, scenario.FORM, scenario.WORKFLOW,
                             case_sla="P10D")
    set_up_signing(province, ui_service)
    commune, username = create_commune(page, ui_service, province)
    for role in ("officer", "reviewer"):
        grant(page, ui_service, commune, role)
    screenshot(page, "03-grants")

    # An applicant's local system submits through the API; the reason is asked for.
    case_id = scenario.submit(ui_service, commune)

    # The commune's admin signs in and works the case from the inbox.
    staff = new_page(browser, console)
    sign_in(staff, ui_service.base_url, commune, username, COMMUNE_ADMIN_PASSWORD)
    staff.goto(f"{ui_service.base_url}/admin#/{commune}/inbox")
    row = staff.get_by_role("row").filter(has_text=case_id[:8])
    expect(row).to_contain_text("Đúng hạn")
    screenshot(staff, "30-inbox")
    row.get_by_role("link").click()
    expect(staff.locator("#case-state")).to_have_attribute("data-state", "nop")
    expect(staff.locator(".case-data")).to_contain_text("Trần Văn Dân")
    expect(staff.locator(".case-data")).to_contain_text("Khác")
    staff.get_by_role("button", name="Thực hiện: Tiếp nhận hồ sơ").click()
    expect(staff.locator("#case-state")).to_have_attribute("data-state", "xu_ly")

    approve = staff.locator("form[data-action=phe_duyet]")
    expect(approve).to_contain_text("cần chữ ký số")
    approve.get_by_label("Ý kiến").fill("Đồng ý cấp.")
    approve.get_by_role("button", name="Ký số và thực hiện: Phê duyệt").click()
    expect(staff.locator("#case-state")).to_have_attribute("data-state", "hoan_thanh")
    expect(staff.get_by_role("status").first).to_contain_text("Đã ký số và thực hiện")
    history = staff.locator("#history")
    expect(history.locator("li")).to_have_count(3)
    expect(history.locator("[data-action=phe_duyet]")).to_have_text("Phê duyệt")
    expect(history).to_contain_text("Có ký số")
    signatures = staff.get_by_role("table").filter(has_text="khoá ký số của đơn vị")
    expect(signatures).to_contain_text("Đã ký")
    screenshot(staff, "32-case-signed")

    # The report: cases per unit, run at the commune.
    staff.goto(f"{ui_service.base_url}/admin#/{commune}/reports")
    staff.get_by_label("Biểu mẫu").select_option(scenario.FORM)
    staff.locator("#group-by").get_by_label("Đơn vị").check()
    staff.get_by_role("button", name="Chạy báo cáo").click()
    result = staff.get_by_role("table").filter(has_text="Đếm")
    expect(result).to_contain_text(commune)
    expect(staff.locator("svg.chart")).to_be_visible()
    screenshot(staff, "40-report")
    staff.get_by_label("Mã báo cáo").fill("don-theo-xa")
    staff.get_by_label("Tên (tiếng Việt)").fill("Đơn theo xã")
    staff.get_by_label("Tên (tiếng Anh)").fill("Requests by commune")
    staff.get_by_role("button", name="Lưu báo cáo").click()
    saved = staff.get_by_role("table").filter(has_text="don-theo-xa")
    with staff.expect_download() as exported:
        saved.get_by_role("button", name="CSV").click()
    csv = exported.value.path().read_text(encoding="utf-8-sig")
    assert commune in csv and exported.value.suggested_filename.endswith(".csv")
    staff.context.close()
