"""The form builder in a real browser: build a form with a conditional field, reorder it by
keyboard, preview it (checked by the server's dry run), break and mend its JSON, save, publish,
compare two versions, and make a variant of it in a unit below."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.ui.browser import screenshot, sign_in
from tests.ui.conftest import UiService

FORMS_DIR = Path(__file__).resolve().parents[2] / "forms"
KEY = "don-thu-nghiem"
CONDITION = {"properties": {"loai_don": {"const": "to_chuc"}}, "required": ["loai_don"]}


def _names(page: Page) -> list[str]:
    return page.locator("#fb-list .fb-item").evaluate_all("items => items.map(i => i.dataset.name)")


def _add(page: Page, widget: str, name: str, label_vi: str, label_en: str) -> None:
    page.locator(f".fb-add[data-widget='{widget}']").click()
    page.locator("#prop-name").fill(name)
    page.locator("#prop-name").press("Tab")
    expect(page.locator("#fb-list .fb-item.selected")).to_have_attribute("data-name", name)
    page.locator("#prop-label-vi").fill(label_vi)
    page.locator("#prop-label-en").fill(label_en)


def test_build_preview_publish_and_compare_a_form(page: Page, ui_service: UiService) -> None:
    root = ui_service.root
    sign_in(page, ui_service.base_url, root, ui_service.username, ui_service.password)
    page.goto(f"{ui_service.base_url}/admin#/{root}/forms")
    expect(page.get_by_role("heading", level=1)).to_have_text("Biểu mẫu")

    # Create a form: key and titles; the builder opens on it.
    page.get_by_label("Mã biểu mẫu").fill(KEY)
    page.get_by_label("Tên biểu mẫu (tiếng Việt)").fill("Đơn thử nghiệm")
    page.get_by_label("Tên biểu mẫu (tiếng Anh)").fill("Trial application")
    page.locator("#new-form-create").click()
    page.wait_for_url(re.compile(rf"#/{root}/forms/{KEY}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(KEY)
    expect(page.locator("#fb-status")).to_contain_text("nháp v1")

    # A required text field, a select with two options, and a field shown only for one option.
    _add(page, "text", "ho_ten", "Họ và tên", "Full name")
    page.locator("#prop-required").check()
    _add(page, "select", "loai_don", "Người nộp", "Applicant")
    page.locator("#prop-option-0-value").fill("ca_nhan")
    page.locator("#prop-option-0-value").press("Tab")
    page.locator("#prop-option-0-vi").fill("Cá nhân")
    page.locator("#prop-option-0-en").fill("Individual")
    page.locator("#prop-option-1-value").fill("to_chuc")
    page.locator("#prop-option-1-value").press("Tab")
    page.locator("#prop-option-1-vi").fill("Tổ chức")
    page.locator("#prop-option-1-en").fill("Organisation")
    _add(page, "text", "ten_to_chuc", "Tên tổ chức", "Organisation name")
    page.locator("#prop-personal-data").select_option("basic")
    page.locator("#prop-conditional").check()
    page.locator("#prop-rule-field").select_option("loai_don")
    page.locator("#prop-rule-value").select_option(label="Tổ chức (to_chuc)")
    page.locator("#prop-required-when-visible").check()
    assert _names(page) == ["ho_ten", "loai_don", "ten_to_chuc"]
    expect(page.locator("#fb-list [data-name='ten_to_chuc']")).to_contain_text(
        "có điều kiện, bắt buộc khi hiện")

    # Reorder by keyboard: Alt+ArrowUp on the focused item, then its "move down" button; each
    # move is announced.
    page.locator("#fb-list [data-name='ten_to_chuc'] .fb-pick").focus()
    page.keyboard.press("Alt+ArrowUp")
    assert _names(page) == ["ho_ten", "ten_to_chuc", "loai_don"]
    expect(page.locator("#fb-list [data-name='ten_to_chuc'] .fb-pick")).to_be_focused()
    expect(page.locator("#fb-announce")).to_have_text(
        "Đã chuyển “Tên tổ chức” tới vị trí 2 trên 3.")
    page.get_by_role("button", name="Chuyển “Tên tổ chức” xuống").click()
    assert _names(page) == ["ho_ten", "loai_don", "ten_to_chuc"]
    expect(page.locator("#fb-announce")).to_contain_text("vị trí 3 trên 3")
    screenshot(page, "10-form-builder")

    # Preview: the conditional field follows the select; the dry run (after saving the draft)
    # puts its errors next to the fields.
    page.get_by_role("tab", name="Xem trước").click()
    preview = page.locator("#fb-preview")
    organisation = preview.get_by_label("Tên tổ chức")
    expect(organisation).to_be_hidden()
    preview.get_by_label("Người nộp").select_option(label="Tổ chức")
    expect(organisation).to_be_visible()
    page.locator("#fb-preview-check").click()  # the form as edited, nothing saved
    expect(page.locator("#fb-preview-result")).to_contain_text(
        "Dữ liệu chưa hợp lệ với biểu mẫu đang soạn")
    expect(page.locator("#fb-status")).to_contain_text("Có thay đổi chưa lưu")
    full_name = preview.get_by_label("Họ và tên")
    expect(full_name).to_have_attribute("aria-invalid", "true")
    error_id = full_name.get_attribute("id")
    expect(page.locator(f"#{error_id}-error")).to_have_text("Trường này là bắt buộc.")
    expect(organisation).to_have_attribute("aria-invalid", "true")
    screenshot(page, "11-form-preview")
    full_name.fill("Nguyễn Văn A")
    preview.get_by_label("Người nộp").select_option(label="Cá nhân")
    expect(organisation).to_be_hidden()
    page.locator("#fb-preview-check").click()
    expect(page.locator("#fb-preview-result")).to_contain_text(
        "Dữ liệu hợp lệ với biểu mẫu đang soạn")

    # The JSON tab: a syntax error is told by line; a definition the server refuses shows its
    # errors inline with their JSON Pointers; mended JSON reloads the visual editor.
    page.get_by_role("tab", name="JSON").click()
    json_box = page.locator("#fb-json")
    good = json_box.input_value()
    json_box.fill(good.replace('"kind": "Form",', '"kind": "Form",,', 1))
    page.locator("#fb-json-apply").click()
    # The line of the stray comma (PostgreSQL's JSONB keeps keys in its own order).
    line = next(n for n, text in enumerate(good.splitlines(), 1) if '"kind": "Form",' in text)
    expect(page.locator("#fb-json-errors")).to_contain_text(f"dòng {line}")
    json_box.fill(good.replace('"widget": "text"', '"widget": "khong-co"', 1))
    page.locator("#fb-save").click()
    expect(page.locator("#fb-json-errors")).to_contain_text("/ui_schema/fields/ho_ten/widget")
    expect(json_box).to_have_attribute("aria-invalid", "true")
    screenshot(page, "12-form-json-errors")
    json_box.fill(good.replace('"Họ và tên"', '"Họ và tên người nộp"', 1))
    page.locator("#fb-json-apply").click()
    expect(page.locator("#fb-json-errors")).to_be_empty()
    page.get_by_role("tab", name="Thiết kế").click()
    expect(page.locator("#fb-list [data-name='ho_ten']")).to_contain_text("Họ và tên người nộp")

    # Save and publish version 1; the API serves the conditional rule.
    page.locator("#fb-publish").click()
    expect(page.locator("#fb-messages")).to_contain_text("Đã ban hành phiên bản v1")
    with ui_service.admin() as admin:
        form = admin.forms.get(root, KEY)
    assert form.latest_version == 1 and form.status == "published"
    assert form.definition is not None
    fields = form.definition["ui_schema"]["fields"]
    assert fields["ten_to_chuc"]["visible_when"] == CONDITION
    assert fields["ten_to_chuc"]["required_when_visible"] is True
    assert fields["ten_to_chuc"]["personal_data"] == "basic"
    assert form.definition["schema"]["required"] == ["ho_ten"]
    assert form.definition["ui_schema"]["order"] == ["ho_ten", "loai_don", "ten_to_chuc"]

    # Version 2: a new draft from the published one, published, then compared with version 1.
    page.locator("#fb-list [data-name='ho_ten'] .fb-pick").click()
    page.locator("#prop-max").fill("100")
    page.locator("#fb-publish").click()
    expect(page.locator("#fb-messages")).to_contain_text("Đã ban hành phiên bản v2")
    page.get_by_role("tab", name="Phiên bản").click()
    expect(page.locator("#fb-panel table tbody tr")).to_have_count(2)
    page.locator("#diff-a").select_option("1")
    page.locator("#diff-b").select_option("2")
    page.locator("#diff-compare").click()
    diff = page.locator("#diff-result")
    expect(diff).to_contain_text("Thay đổi từ v1 đến v2")
    expect(diff.locator("[data-change='changed']")).to_have_text("ho_ten")
    expect(diff).to_contain_text("/schema/properties/ho_ten/maxLength")
    screenshot(page, "13-form-diff")


def test_variant_of_an_inherited_form(page: Page, ui_service: UiService) -> None:
    root = ui_service.root
    with ui_service.admin() as admin:
        admin.tenants.create(code="TINH-THU", name="Tỉnh thử nghiệm", kind="province", parent=root)
        admin.forms.create(root, definition={
            "kind": "Form", "key": "to-khai-goc", "title": {"vi": "Tờ khai gốc", "en": "Base"},
            "schema": {"type": "object", "properties": {"ho_ten": {"type": "string"}},
                       "required": ["ho_ten"]},
            "ui_schema": {"fields": {"ho_ten": {"label": {"vi": "Họ tên", "en": "Name"}}}}})
        admin.forms.publish(root, "to-khai-goc", 1)
    sign_in(page, ui_service.base_url, root, ui_service.username, ui_service.password)
    page.goto(f"{ui_service.base_url}/admin#/TINH-THU/forms")
    row = page.locator("tr", has_text="to-khai-goc")
    expect(row).to_contain_text(f"Kế thừa từ {root}")
    row.get_by_role("button", name="Tạo biến thể của to-khai-goc tại đơn vị này").click()
    page.wait_for_url(re.compile(r"#/TINH-THU/forms/to-khai-goc$"))
    expect(page.locator("#fb-status")).to_contain_text("Của đơn vị")
    expect(page.locator("#fb-list [data-name='ho_ten']")).to_be_visible()
    with ui_service.admin() as admin:
        variant = admin.forms.get("TINH-THU", "to-khai-goc")
    assert variant.inherited is False and variant.draft_version == 1

    # The builder speaks English too.
    page.locator("#language-picker").select_option("en")
    expect(page.get_by_role("tab", name="Design")).to_be_visible()
    expect(page.locator("#fb-status")).to_contain_text("Own · Never published · draft v1")


def test_every_palette_type_saves_and_previews(page: Page, ui_service: UiService) -> None:
    root = ui_service.root
    with ui_service.admin() as admin:
        admin.tenants.create(code="79", name="Thành phố Hồ Chí Minh", kind="province", parent=root)
        admin.tenants.create(code="26734", name="Phường Sài Gòn", kind="commune", parent="79")
        admin.forms.create(root, definition={
            "kind": "Form", "key": "moi-loai-truong", "title": {"vi": "Mọi loại", "en": "All"},
            "schema": {"type": "object", "properties": {}}, "ui_schema": {"fields": {}}})
    sign_in(page, ui_service.base_url, root, ui_service.username, ui_service.password)
    page.goto(f"{ui_service.base_url}/admin#/{root}/forms/moi-loai-truong")
    widgets = ["text", "number", "date", "select", "multiselect", "checkbox", "file", "address",
               "citizen-id", "group", "section"]
    for widget in widgets:
        page.locator(f".fb-add[data-widget='{widget}']").click()
    expect(page.locator("#fb-list .fb-item")).to_have_count(len(widgets))
    page.locator("#fb-list .fb-item").nth(9).locator(".fb-pick").click()
    page.locator("#prop-sub-add").click()
    expect(page.locator("#prop-group .fb-option")).to_have_count(1)

    # Drag the section to the top.
    page.locator("#fb-list .fb-section").drag_to(page.locator("#fb-list .fb-item").first)
    expect(page.locator("#fb-list .fb-item").first).to_have_class(re.compile("fb-section"))

    page.locator("#fb-save").click()
    expect(page.locator("#fb-messages")).to_contain_text("Đã lưu bản nháp v1")
    with ui_service.admin() as admin:
        definition = admin.forms.get(root, "moi-loai-truong").definition
    assert definition is not None
    assert [s["fields"] for s in definition["ui_schema"]["sections"]] == [
        definition["ui_schema"]["order"]]
    widgets_saved = {f["widget"] for f in definition["ui_schema"]["fields"].values()}
    assert widgets_saved == set(widgets) - {"section"}

    page.get_by_role("tab", name="Xem trước").click()
    preview = page.locator("#fb-preview")
    expect(preview.locator("fieldset.preview-section")).to_have_count(1)
    # The address offers the provinces of the unit tree, then the communes of the one chosen.
    province = preview.get_by_label("Tỉnh, thành phố")
    commune = preview.get_by_label("Xã, phường, đặc khu")
    expect(commune).to_be_disabled()
    province.select_option("79")
    expect(commune).to_be_enabled()
    commune.select_option("26734")
    preview.get_by_label("Số nhà, đường, thôn, tổ dân phố").fill("1 Lê Lợi")
    preview.get_by_role("button", name="Thêm dòng").click()
    expect(preview.locator(".preview-row")).to_have_count(1)
    page.locator("#fb-preview-check").click()
    expect(page.locator("#fb-preview-result")).to_have_text(
        "Dữ liệu hợp lệ với biểu mẫu đang soạn.")
    screenshot(page, "14-form-preview-all-types")


def test_a_catalogue_form_opens_in_every_tab(page: Page, ui_service: UiService) -> None:
    """A real form (references, sections, conditions written by hand) survives the editor."""
    root = ui_service.root
    definition = json.loads((FORMS_DIR / "ho-kinh-doanh" / "form.json").read_text("utf-8"))
    with ui_service.admin() as admin:
        admin.forms.create(root, definition=definition)
    sign_in(page, ui_service.base_url, root, ui_service.username, ui_service.password)
    page.goto(f"{ui_service.base_url}/admin#/{root}/forms/ho-kinh-doanh")
    items = page.locator("#fb-list .fb-item")
    expect(items).to_have_count(len(definition["schema"]["properties"])
                                + len(definition["ui_schema"]["sections"]))
    for index in range(items.count()):
        items.nth(index).locator(".fb-pick").click()
        expect(page.locator("#fb-props-title")).to_be_visible()
    members = page.locator("#fb-list [data-name='thanh_vien_ho_gia_dinh']")
    expect(members).to_contain_text("có điều kiện, bắt buộc khi hiện")

    page.get_by_role("tab", name="Xem trước").click()
    preview = page.locator("#fb-preview")
    minutes = preview.locator("[data-pointer='/thanh_vien_ho_gia_dinh']")
    expect(minutes).to_be_hidden()
    preview.get_by_label("Hộ kinh doanh do ai thành lập").select_option(
        label="Các thành viên hộ gia đình")
    expect(minutes).to_be_visible()

    page.get_by_role("tab", name="JSON").click()
    assert json.loads(page.locator("#fb-json").input_value())["schema"] == definition["schema"]
    page.get_by_role("tab", name="Thiết kế").click()
    page.locator("#fb-save").click()
    expect(page.locator("#fb-messages")).to_contain_text("Đã lưu bản nháp v1")
    with ui_service.admin() as admin:
        saved = admin.forms.get(root, "ho-kinh-doanh").definition
    assert saved is not None
    assert saved["schema"] == definition["schema"]
    assert saved["ui_schema"]["fields"] == definition["ui_schema"]["fields"]
    assert saved["ui_schema"]["sections"] == definition["ui_schema"]["sections"]


def test_leaving_unsaved_changes_asks_first(page: Page, ui_service: UiService) -> None:
    root = ui_service.root
    sign_in(page, ui_service.base_url, root, ui_service.username, ui_service.password)
    page.goto(f"{ui_service.base_url}/admin#/{root}/forms")
    page.get_by_label("Mã biểu mẫu").fill("don-chua-luu")
    page.get_by_label("Tên biểu mẫu (tiếng Việt)").fill("Đơn chưa lưu")
    page.get_by_label("Tên biểu mẫu (tiếng Anh)").fill("Unsaved")
    page.locator("#new-form-create").click()
    page.wait_for_url(re.compile(rf"#/{root}/forms/don-chua-luu$"))
    _add(page, "text", "ghi_chu", "Ghi chú", "Note")

    nav = page.get_by_role("navigation", name="Chức năng")
    nav.get_by_role("link", name="Quy trình").click()
    dialog = page.get_by_role("alertdialog", name="Có thay đổi chưa lưu")
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(rf"#/{root}/forms/don-chua-luu$"))
    expect(dialog.get_by_role("button", name="Ở lại trang")).to_be_focused()
    dialog.get_by_role("button", name="Ở lại trang").click()
    expect(page.locator("#fb-list [data-name='ghi_chu']")).to_be_visible()  # nothing lost

    nav.get_by_role("link", name="Quy trình").click()
    page.get_by_role("button", name="Rời trang, bỏ thay đổi").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Quy trình xử lý")
