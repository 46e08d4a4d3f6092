"""Signing in to the web UI through the unit's own identity provider (OpenID Connect): a real
provider (oidc-provider, tests/oidc) in front, the platform's sign-in page, the provider's
login and consent pages, and back into the UI as the matched official."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.oidc_provider import OidcProvider, client_config
from tests.ui import scenario
from tests.ui.browser import screenshot
from tests.ui.conftest import UiService

CITIZEN_ID = "001099000123"


@pytest.fixture
def provider(ui_service: UiService) -> Iterator[OidcProvider]:
    callback = f"{ui_service.base_url}/oauth/federated/callback"
    with OidcProvider(clients=[client_config("nentang", "bi-mat-idp", [callback])],
                      accounts={"alice": {"citizen_id": CITIZEN_ID, "name": "Alice"}}) as idp:
        yield idp


def test_an_official_signs_in_through_the_units_identity_provider(
        page: Page, ui_service: UiService, provider: OidcProvider) -> None:
    unit = scenario.new_code("TINH")
    with ui_service.admin() as admin:
        admin.tenants.create(code=unit, name="Tỉnh Định Danh", kind="province",
                             parent=ui_service.root)
        admin.identity_providers.replace(
            unit, display_name="Định danh thử nghiệm", issuer=provider.issuer,
            client_id="nentang", client_secret="bi-mat-idp",
            scopes="openid profile citizen", match_claim="citizen_id")
        admin.users.create(unit, username="can.bo.alice", display_name="Cán bộ Alice",
                           external_id=CITIZEN_ID, roles=["officer"])

    page.goto(f"{ui_service.base_url}/admin")
    page.wait_for_url(re.compile(r"/oauth/authorize\?"))
    federated = page.locator("form[action='/oauth/federated']")
    federated.get_by_role("textbox").fill(unit)
    federated.get_by_role("button").click()
    # The provider's own pages: log in, then consent, until it sends the official back.
    for _ in range(4):
        page.wait_for_load_state()
        if page.url.startswith(f"{ui_service.base_url}/admin"):
            break
        if page.locator("input[name=login]").count():
            page.locator("input[name=login]").fill("alice")
            page.locator("input[name=password]").fill("any")
        page.locator("form [type=submit]").first.click()
    page.wait_for_url(re.compile(r"/admin#/"))
    expect(page.locator("#who")).to_have_text("can.bo.alice")
    expect(page.locator("#unit-picker")).to_have_value(unit)
    expect(page.get_by_role("heading", level=1)).to_have_text("Hồ sơ cần xử lý")
    screenshot(page, "05-federated-sign-in")
