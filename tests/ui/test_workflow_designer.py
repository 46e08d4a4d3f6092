"""The workflow designer in a real browser: create a workflow bound to a published form, edit
its states and actions as lists, watch the service-drawn diagram follow, see a publish-time
error land on the action at fault, fix it, publish, and run the simulator."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.ui.browser import screenshot, sign_in
from tests.ui.conftest import UiService


def _published_form(ui: UiService, key: str) -> None:
    with ui.admin() as admin:
        admin.forms.create(ui.root, definition={
            "kind": "Form", "key": key, "title": {"vi": "Đơn đề nghị", "en": "Request"},
            "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                       "type": "object", "required": ["ho_ten"],
                       "properties": {"ho_ten": {"type": "string", "minLength": 1,
                                                 "maxLength": 100}}},
            "ui_schema": {"fields": {"ho_ten": {"label": {"vi": "Họ và tên",
                                                          "en": "Full name"}}}}})
        admin.forms.publish(ui.root, key, 1)


def test_design_publish_and_simulate_a_workflow(page: Page, ui_service: UiService) -> None:
    suffix = uuid.uuid4().hex[:6]
    form_key, key = f"don-{suffix}", f"xu-ly-don-{suffix}"
    _published_form(ui_service, form_key)
    sign_in(page, ui_service.base_url, ui_service.root, ui_service.username,
            ui_service.password)
    design_two_step_workflow(page, ui_service, ui_service.root, form_key, key)

    # The simulator takes one step.
    page.get_by_label("Dữ liệu mẫu (JSON)").fill('{"ho_ten": "Nguyễn Văn A"}')
    page.get_by_role("button", name="Thêm bước chạy thử").click()
    page.locator("#wf-sim-steps li").first.get_by_label("Thao tác").select_option("tiep_nhan")
    page.locator("#wf-sim-run").click()
    expect(page.locator("#wf-sim-final")).to_contain_text("xu_ly")
    expect(page.locator("#wf-sim-path")).to_have_text("nop → xu_ly")
    expect(page.locator("#wf-sim-result")).to_contain_text("Đã chuyển")
    screenshot(page, "22-workflow-simulator")

    with ui_service.admin() as admin:
        versions = admin.workflows.versions(ui_service.root, key)
        assert [(v.number, v.status) for v in versions] == [(1, "published")]
        definition = admin.workflows.get(ui_service.root, key).definition
    assert definition is not None
    assert [s["name"] for s in definition["states"]] == ["nop", "xu_ly", "hoan_thanh"]
    xu_ly = definition["states"][1]
    assert (xu_ly["type"], xu_ly["sla"]) == ("task", {"duration": "P3D", "days": "working"})
    assert definition["states"][2]["outcome"] == "approved"
    assert definition["actions"] == [
        {"name": "tiep_nhan", "title": {"vi": "Tiếp nhận hồ sơ", "en": "Receive the file"},
         "from": "nop", "to": "xu_ly", "roles": ["officer"]},
        {"name": "phe_duyet", "title": {"vi": "Phê duyệt", "en": "Approve"},
         "from": "xu_ly", "to": "hoan_thanh", "roles": ["reviewer"],
         "signature": {"required": True, "role": "reviewer"}},
    ]


def design_two_step_workflow(page: Page, ui_service: UiService, unit: str, form_key: str,
                             key: str, *, case_sla: str | None = None) -> None:
    """As an admin would, in the designer: receive (an officer), then approve with a
    reviewer's signature; a first publish fails on the action pointing at a missing state, the
    fix publishes version 1."""
    page.goto(f"{ui_service.base_url}/admin#/{unit}/workflows")
    expect(page.get_by_role("heading", level=1)).to_have_text("Quy trình xử lý")

    # Create: key, titles, the bound form picked from the unit's forms.
    create = page.locator("form[aria-labelledby=wf-create-title]")
    create.get_by_label("Mã quy trình").fill(key)
    create.get_by_label("Tên tiếng Việt").fill("Xử lý đơn đề nghị")
    create.get_by_label("Tên tiếng Anh").fill("Handling a request")
    create.get_by_label("Biểu mẫu mở hồ sơ").select_option(form_key)
    create.get_by_role("button", name="Tạo quy trình").click()
    page.wait_for_url(re.compile(rf"#/{unit}/workflows/{key}$"))
    expect(page.locator("#wf-editing")).to_contain_text("bản nháp phiên bản 1")

    # States: the start state renamed (its action follows), a task with an SLA added and
    # moved up, the end state approved.
    start = page.locator("#wf-state-0")
    start.get_by_label("Mã bước").fill("nop")
    start.get_by_label("Tên tiếng Việt").fill("Đã nộp")
    page.locator("#wf-state-1").get_by_label("Kết quả").select_option("approved")
    page.get_by_role("button", name="Thêm bước", exact=True).click()
    added = page.locator("#wf-state-2")
    expect(added.get_by_label("Mã bước")).to_be_focused()
    added.get_by_label("Mã bước").fill("xu_ly")
    added.get_by_label("Tên tiếng Việt").fill("Xử lý hồ sơ")
    added.get_by_label("Tên tiếng Anh").fill("Processing")
    added.get_by_label("Thời hạn", exact=True).fill("P3D")
    added.get_by_label("Cách tính ngày").select_option("working")
    page.get_by_role("button", name="Chuyển lên: Bước 3: xu_ly").click()
    expect(page.locator("#wf-state-1").get_by_label("Mã bước")).to_have_value("xu_ly")
    expect(page.locator("#wf-state-1-up")).to_be_focused()
    expect(page.locator("#wf-state-2").get_by_label("Mã bước")).to_have_value("hoan_thanh")

    # Actions: tiep_nhan by an officer; phe_duyet by a reviewer, signed by a reviewer, at
    # first pointing to a state that does not exist.
    first = page.locator("#wf-action-0")
    expect(first.locator("input[type=checkbox][value=nop]")).to_be_checked()
    first.get_by_label("Mã thao tác").fill("tiep_nhan")
    first.get_by_label("Tên tiếng Việt").fill("Tiếp nhận hồ sơ")
    first.get_by_label("Tên tiếng Anh").fill("Receive the file")
    first.get_by_label("Sang bước").fill("xu_ly")
    page.get_by_role("button", name="Thêm thao tác", exact=True).click()
    second = page.locator("#wf-action-1")
    second.get_by_label("Mã thao tác").fill("phe_duyet")
    second.get_by_label("Tên tiếng Việt").fill("Phê duyệt")
    second.get_by_label("Tên tiếng Anh").fill("Approve")
    second.locator("input[type=checkbox][value=nop]").uncheck()
    second.locator("input[type=checkbox][value=xu_ly]").check()
    second.get_by_label("Sang bước").fill("hoan_thanh_sai")
    second.locator("input[type=checkbox][value=reviewer]").check()
    second.locator("input[type=checkbox][value=officer]").uncheck()
    second.get_by_label("Yêu cầu ký số").check()
    expect(second.get_by_label("Vai trò người ký")).to_have_value("reviewer")

    diagram = page.locator("#wf-diagram svg")
    for name in ("nop", "xu_ly", "hoan_thanh", "tiep_nhan", "phe_duyet ✎", "hoan_thanh_sai"):
        expect(diagram).to_contain_text(name)
    expect(diagram.locator("g.state-missing[data-state=hoan_thanh_sai]")).to_have_count(1)
    expect(diagram).to_contain_text("SLA P3D")
    zoom = page.get_by_role("button", name="Xem kích thước thật")
    zoom.focus()
    page.keyboard.press("Enter")
    expect(zoom).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")
    expect(zoom).to_have_attribute("aria-pressed", "false")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "20-workflow-designer")

    # Publishing refuses: the message sits next to the action's "to" field.
    page.get_by_role("button", name="Ban hành", exact=True).click()
    expect(page.locator("#wf-problem")).to_be_visible()
    to = second.get_by_label("Sang bước")
    expect(to).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#wf-action-1-to-error")).to_contain_text("hoan_thanh_sai")
    expect(to).to_have_attribute("aria-describedby", re.compile("wf-action-1-to-error"))
    expect(second).to_have_class(re.compile(r"\binvalid\b"))
    expect(page.locator("#wf-action-0 [aria-invalid=true]")).to_have_count(0)
    screenshot(page, "21-workflow-publish-error")

    to.fill("hoan_thanh")
    expect(diagram.locator("g.state-missing")).to_have_count(0)
    if case_sla is not None:  # the time allowed for the whole case
        page.locator("#wf-case-sla-duration").fill(case_sla)
    page.get_by_role("button", name="Ban hành", exact=True).click()
    expect(page.locator("#wf-status")).to_contain_text("Đã ban hành phiên bản 1")
    expect(page.locator("#wf-versions")).to_contain_text("Đã ban hành")
    expect(page.locator("[aria-invalid=true]")).to_have_count(0)
