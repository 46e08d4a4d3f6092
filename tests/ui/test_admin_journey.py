"""A new administrator's first day, in a real browser: sign in, create a commune and its
admin, give the commune's staff their roles, then, as the commune's admin, take a case that an
applicant submitted through the API from the inbox to its signed end, read its history and
run a report. The other commune's pages stay closed to them."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.pki import build
from tests.ui.browser import ConsoleWatch, screenshot, sign_in
from tests.ui.conftest import UiService

TEXT = {"vi": "Bước", "en": "Step"}
FORM = "don-de-nghi"
WORKFLOW = "xu-ly-don"
COMMUNE_ADMIN_PASSWORD = "Quan-tri-xa-2026"


def form_definition() -> dict[str, Any]:
    """A request with a reason that is asked for only when the kind is 'khac'."""
    return {
        "kind": "Form", "key": FORM,
        "title": {"vi": "Đơn đề nghị", "en": "Request"},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "required": ["ho_ten", "loai"],
            "properties": {
                "ho_ten": {"type": "string", "minLength": 2, "maxLength": 100},
                "loai": {"enum": ["cap_moi", "khac"]},
                "ly_do": {"type": "string", "maxLength": 500},
            },
        },
        "ui_schema": {"fields": {
            "ho_ten": {"label": {"vi": "Họ và tên", "en": "Full name"},
                       "personal_data": "basic"},
            "loai": {"label": {"vi": "Loại đề nghị", "en": "Kind"}, "widget": "select",
                     "option_labels": {"cap_moi": {"vi": "Cấp mới", "en": "New"},
                                       "khac": {"vi": "Khác", "en": "Other"}}},
            "ly_do": {"label": {"vi": "Lý do", "en": "Reason"},
                      "visible_when": {"properties": {"loai": {"const": "khac"}},
                                       "required": ["loai"]},
                      "required_when_visible": True},
        }},
    }


def workflow_definition() -> dict[str, Any]:
    """Receive (an officer), then approve with the reviewer's digital signature."""
    return {
        "kind": "Workflow", "key": WORKFLOW, "title": {"vi": "Xử lý đơn", "en": "Handle"},
        "form": FORM, "sla": {"duration": "P10D", "days": "calendar"},
        "states": [
            {"name": "nop", "type": "start", "title": {"vi": "Đã nộp", "en": "Filed"}},
            {"name": "xu_ly", "type": "task", "title": {"vi": "Đang xử lý", "en": "Handling"},
             "sla": {"duration": "P3D"}},
            {"name": "hoan_thanh", "type": "terminal", "outcome": "approved",
             "title": {"vi": "Hoàn thành", "en": "Done"}}],
        "actions": [
            {"name": "tiep_nhan", "title": {"vi": "Tiếp nhận", "en": "Receive"},
             "from": "nop", "to": "xu_ly", "roles": ["officer"]},
            {"name": "phe_duyet", "title": {"vi": "Phê duyệt", "en": "Approve"},
             "from": "xu_ly", "to": "hoan_thanh", "roles": ["reviewer"], "comment": "required",
             "signature": {"required": True, "role": "reviewer"}}],
    }


def code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6].upper()}"


@pytest.fixture
def province(ui_service: UiService) -> str:
    """A province with the form, the workflow and a software signing key (PKCS#12)."""
    unit = code("TINH")
    pki = build()
    with ui_service.admin() as admin:
        admin.tenants.create(code=unit, name=f"Tỉnh thử {unit}", kind="province",
                             parent=ui_service.root)
        admin.forms.create(unit, definition=form_definition())
        admin.forms.publish(unit, FORM, 1)
        admin.workflows.create(unit, definition=workflow_definition())
        admin.workflows.publish(unit, WORKFLOW, 1)
        admin.signing.replace(unit, provider="pkcs12", trust_anchors=[pki.root.pem], config={
            "pkcs12": base64.b64encode(pki.signer.pkcs12(b"mat-khau")).decode(),
            "password": "mat-khau"})
    return unit


def new_page(browser: Browser, console: ConsoleWatch) -> Page:
    context = browser.new_context(locale="vi-VN", viewport={"width": 1366, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    console.attach(opened)
    return opened


def create_commune(page: Page, ui_service: UiService, province: str) -> tuple[str, str]:
    """In the unit tree: a commune under the province, with its first admin."""
    commune, username = code("XA"), "quantri.xa"
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


def test_a_new_admin_takes_a_case_from_submission_to_signed_decision(
        page: Page, browser: Browser, console: ConsoleWatch, ui_service: UiService,
        province: str) -> None:
    sign_in(page, ui_service.base_url, ui_service.root, ui_service.username,
            ui_service.password)
    commune, username = create_commune(page, ui_service, province)
    for role in ("officer", "reviewer"):
        grant(page, ui_service, commune, role)
    screenshot(page, "03-grants")

    # An applicant's local system submits through the API; the reason is asked for.
    with ui_service.admin() as admin:
        portal = admin.clients.create(commune, name="Cổng dịch vụ công", roles=["api_client"])
    from nentang_sdk import Client
    with Client(ui_service.base_url, client_id=portal.client_id,
                client_secret=portal.client_secret or "") as applicant:
        submitted = applicant.submissions.create(commune, form=FORM, data={
            "ho_ten": "Trần Văn Dân", "loai": "khac", "ly_do": "Bổ sung hồ sơ"})
    case_id = str(submitted.case)

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
    staff.get_by_role("button", name="Thực hiện: Tiếp nhận").click()
    expect(staff.locator("#case-state")).to_have_attribute("data-state", "xu_ly")

    approve = staff.locator("form[data-action=phe_duyet]")
    expect(approve).to_contain_text("cần chữ ký số")
    approve.get_by_role("button", name="Ký số và thực hiện: Phê duyệt").click()
    comment = approve.get_by_label("Ý kiến")
    expect(comment).to_have_attribute("aria-invalid", "true")
    screenshot(staff, "31-case-comment-required")
    comment.fill("Đồng ý cấp.")
    approve.get_by_role("button", name="Ký số và thực hiện: Phê duyệt").click()
    expect(staff.locator("#case-state")).to_have_attribute("data-state", "hoan_thanh")
    expect(staff.get_by_role("status").first).to_contain_text("Đã ký số và thực hiện")
    history = staff.locator("#history")
    expect(history.locator("li")).to_have_count(3)
    expect(history).to_contain_text("phe_duyet")
    expect(history).to_contain_text("Có ký số")
    expect(staff.get_by_role("table").filter(has_text="pkcs12")).to_contain_text("Đã ký")
    screenshot(staff, "32-case-signed")

    # The report: cases per unit, run at the commune.
    staff.goto(f"{ui_service.base_url}/admin#/{commune}/reports")
    staff.get_by_label("Biểu mẫu").select_option(FORM)
    staff.locator("#group-by").get_by_label("Đơn vị").check()
    staff.get_by_role("button", name="Chạy báo cáo").click()
    result = staff.get_by_role("table").filter(has_text="count")
    expect(result).to_contain_text(commune)
    expect(staff.locator("svg.chart")).to_be_visible()
    screenshot(staff, "40-report")
    staff.context.close()
