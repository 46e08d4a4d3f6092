"""The case view's hard moments in a real browser: someone else acts first (412), a remote
signature that is still pending, and a commune's admin trying another commune's pages."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.pki import build
from tests.test_signing import plug_in_cms
from tests.ui import scenario
from tests.ui.browser import ConsoleWatch, screenshot, session_token, sign_in
from tests.ui.conftest import UiService


def open_case(page: Page, ui: UiService, unit: str, case_id: str) -> None:
    page.goto(f"{ui.base_url}/admin#/{unit}/cases/{case_id}")
    expect(page.locator("#case-state")).to_be_visible()


def act(ui: UiService, token: str, unit: str, case_id: str, action: str,
        **body: object) -> httpx.Response:
    """An action through the API with the given token (another tab, another desk)."""
    path = f"{ui.base_url}/api/v1/tenants/{unit}/cases/{case_id}"
    current = httpx.get(path, headers={"Authorization": f"Bearer {token}"})
    current.raise_for_status()
    return httpx.post(f"{path}/actions/{action}", json=body, headers={
        "Authorization": f"Bearer {token}", "If-Match": current.headers["ETag"]})


def test_someone_else_acting_first_is_a_clear_conflict_and_nothing_is_lost(
        page: Page, ui_service: UiService) -> None:
    where = scenario.commune(ui_service, scenario.province(ui_service))
    case_id = scenario.submit(ui_service, where.code, attachment="Giấy xác nhận.pdf")
    sign_in(page, ui_service.base_url, where.code, where.username, where.password)
    open_case(page, ui_service, where.code, case_id)
    # The applicant's file: listed with its field, and downloads under its Vietnamese name.
    files = page.get_by_role("region", name="Tệp đính kèm")
    expect(files).to_contain_text("Giấy tờ kèm theo")
    with page.expect_download() as downloaded:
        files.get_by_role("button", name="Giấy xác nhận.pdf").click()
    assert downloaded.value.suggested_filename == "Giấy xác nhận.pdf"
    assert downloaded.value.path().read_bytes() == scenario.PDF
    # A colleague (here: the same official in another tab) receives the case first.
    assert act(ui_service, session_token(page), where.code, case_id,
               "tiep_nhan").status_code == 200
    page.get_by_role("button", name="Thực hiện: Tiếp nhận").click()
    alert = page.locator(".conflict")
    expect(alert).to_contain_text("Hồ sơ vừa được người khác xử lý")
    expect(page.locator("#case-state")).to_have_attribute("data-state", "nop")  # as read
    screenshot(page, "33-case-conflict")
    alert.get_by_role("button", name="Tải lại hồ sơ").click()
    expect(page.locator("#case-state")).to_have_attribute("data-state", "xu_ly")
    expect(page.locator("#history li")).to_have_count(2)  # opened + one receipt, not two


def test_a_pending_remote_signature_shows_and_completes_in_the_page(
        page: Page, ui_service: UiService) -> None:
    pki = build()
    where = scenario.commune(ui_service, scenario.province(ui_service, provider="client",
                                                           pki=pki))
    case_id = scenario.submit(ui_service, where.code)
    sign_in(page, ui_service.base_url, where.code, where.username, where.password)
    token = session_token(page)
    assert act(ui_service, token, where.code, case_id, "tiep_nhan").status_code == 200
    open_case(page, ui_service, where.code, case_id)
    approve = page.locator("form[data-action=phe_duyet]")
    approve.get_by_role("button", name="Ký số và thực hiện: Phê duyệt").click()
    comment = approve.get_by_label("Ý kiến")  # this step wants a comment: said on the field
    expect(comment).to_have_attribute("aria-invalid", "true")
    expect(approve.locator(f"#{comment.get_attribute('id')}-error")).not_to_be_empty()
    screenshot(page, "31-case-comment-required")
    comment.fill("Đồng ý.")
    approve.get_by_role("button", name="Ký số và thực hiện: Phê duyệt").click()
    pending = page.locator(".pending-signature")
    expect(pending).to_contain_text("Đang chờ chữ ký số")
    expect(pending).to_contain_text("ứng dụng ký số trên máy của bạn")
    expect(page.locator("#case-state")).to_have_attribute("data-state", "xu_ly")
    screenshot(page, "34-signature-pending")

    # The official's plug-in signs the digest with their own key and hands it in.
    signature_id = pending.locator("[data-signature]").get_attribute("data-signature")
    path = f"{ui_service.base_url}/api/v1/tenants/{where.code}/cases/{case_id}/signatures"
    waiting = httpx.get(f"{path}/{signature_id}", headers={"Authorization": f"Bearer {token}"})
    identity = pki.person(f"CCCD:{where.username}")
    digest = waiting.json()["instructions"]["digest"]
    with ThreadPoolExecutor(1) as plug_in:  # Playwright's loop runs in this thread
        cms = plug_in.submit(lambda: asyncio.run(plug_in_cms(identity, digest))).result()
    handed_in = httpx.post(f"{path}/{signature_id}", headers={"Authorization": f"Bearer {token}"},
                           json={"signature": cms})
    assert handed_in.status_code == 200, handed_in.text

    expect(page.locator("#case-state")).to_have_attribute("data-state", "hoan_thanh",
                                                          timeout=15_000)
    expect(page.locator("#case-messages")).to_contain_text("Chữ ký số đã hoàn tất")


def test_a_commune_admin_cannot_reach_another_communes_pages_or_data(
        page: Page, browser: Browser, console: ConsoleWatch, ui_service: UiService) -> None:
    parent = scenario.province(ui_service)
    mine = scenario.commune(ui_service, parent, name="Xã Của Tôi")
    theirs = scenario.commune(ui_service, parent, name="Xã Bên Cạnh")
    their_case = scenario.submit(ui_service, theirs.code, {
        "ho_ten": "Lê Thị Bí Mật", "loai": "cap_moi"})
    sign_in(page, ui_service.base_url, mine.code, mine.username, mine.password)

    picker = page.locator("#unit-picker")
    expect(picker).not_to_contain_text("Xã Bên Cạnh")
    for screen in ("units", "inbox", "access", "forms", "workflows", "reports", "audit",
                   f"cases/{their_case}"):
        page.goto(f"{ui_service.base_url}/admin#/{theirs.code}/{screen}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Không thể mở trang này")
        expect(page.locator("main")).not_to_contain_text("Lê Thị Bí Mật")
    screenshot(page, "50-cross-tenant-denied")
    # Not in the inbox either, and the API refuses the token outright, changing nothing.
    page.goto(f"{ui_service.base_url}/admin#/{mine.code}/inbox")
    expect(page.locator("main")).not_to_contain_text(their_case[:8])
    token = session_token(page)
    base = f"{ui_service.base_url}/api/v1/tenants/{theirs.code}/cases/{their_case}"
    assert httpx.get(base, headers={"Authorization": f"Bearer {token}"}).status_code in (403, 404)
    refused = httpx.post(f"{base}/actions/tiep_nhan", json={}, headers={
        "Authorization": f"Bearer {token}", "If-Match": '"1"'})
    assert refused.status_code in (403, 404)
    with ui_service.admin() as admin:
        unchanged = admin.cases.get(theirs.code, their_case)
        assert unchanged.state.name == "nop" and unchanged.revision == 1
        assert len(admin.cases.history(theirs.code, their_case)) == 1


def test_a_case_that_wants_one_official_is_taken_acted_on_and_given_back(
        page: Page, ui_service: UiService) -> None:
    where = scenario.commune(ui_service, scenario.province(ui_service, claim=True))
    case_id = scenario.submit(ui_service, where.code)
    sign_in(page, ui_service.base_url, where.code, where.username, where.password)
    assert act(ui_service, session_token(page), where.code, case_id,
               "tiep_nhan").status_code == 200
    open_case(page, ui_service, where.code, case_id)
    # Unclaimed: no action yet, only "take the case".
    expect(page.locator("form.action")).to_have_count(0)
    page.get_by_role("button", name="Nhận xử lý hồ sơ").click()
    expect(page.locator("#case-messages")).to_contain_text("Bạn đã nhận xử lý hồ sơ")
    expect(page.locator("form[data-action=phe_duyet]")).to_be_visible()
    screenshot(page, "35-case-claimed")
    page.get_by_role("button", name="Trả lại hồ sơ").click()
    expect(page.locator("#case-messages")).to_contain_text("Đã trả lại hồ sơ")
    expect(page.locator("form.action")).to_have_count(0)
    with ui_service.admin() as admin:
        assert admin.cases.get(where.code, case_id).assignee is None
