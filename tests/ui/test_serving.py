"""How the service serves its web UI: strict headers, nothing from another origin, no
cookies, complete message catalogues. Plain HTTP against the running service (no browser)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.ui import catalogues
from app.ui.endpoints import STATIC_DIR
from tests.ui.conftest import UiService

SHELL_PATHS = ["/admin", "/admin/", "/admin/callback", "/admin/static/js/app.js",
               "/admin/static/css/admin.css", "/admin/i18n/vi.json", "/admin/i18n/en.json"]


@pytest.mark.parametrize("path", SHELL_PATHS)
def test_every_ui_answer_carries_the_strict_policy_and_no_cookie(ui_service: UiService,
                                                                 path: str) -> None:
    response = httpx.get(ui_service.base_url + path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in response.headers


def test_the_sign_in_page_has_no_script_and_speaks_the_ui_language(ui_service: UiService) -> None:
    params = {"response_type": "code", "client_id": "nentang-ui", "code_challenge": "x" * 43,
              "code_challenge_method": "S256", "state": "s", "ui_locales": "en",
              "redirect_uri": f"{ui_service.base_url}/admin/callback"}
    page = httpx.get(f"{ui_service.base_url}/oauth/authorize", params=params)
    assert page.status_code == 200 and "set-cookie" not in page.headers
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none'
    assert "<script" not in page.text and "style=" not in page.text and "<style" not in page.text
    assert '<html lang="en">' in page.text and "Unit code" in page.text
    assert '<input type="hidden" name="ui_locales" value="en">' in page.text
    vietnamese = httpx.get(f"{ui_service.base_url}/oauth/authorize",
                           params={**params, "ui_locales": "vi-VN"})
    assert '<html lang="vi">' in vietnamese.text and "Mã đơn vị" in vietnamese.text
    failed = httpx.post(f"{ui_service.base_url}/oauth/authorize", data={
        **params, "tenant": ui_service.root, "username": "khong-ai", "password": "sai"})
    assert failed.status_code == 401 and "set-cookie" not in failed.headers
    assert "Wrong unit, username or password" in failed.text


def test_a_cookie_never_authenticates_the_api(ui_service: UiService) -> None:
    """The UI's session is a bearer token; a cross-site request carrying cookies gets nowhere."""
    issued = httpx.post(f"{ui_service.base_url}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": ui_service.service.admin_client_id,
        "client_secret": ui_service.service.admin_client_secret})
    token = issued.json()["access_token"]
    me = f"{ui_service.base_url}/api/v1/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for name in ("session", "access_token", "Authorization"):
        assert httpx.get(me, headers={"Cookie": f"{name}={token}"}).status_code == 401


def test_unknown_language_and_missing_file_are_404(ui_service: UiService) -> None:
    assert httpx.get(f"{ui_service.base_url}/admin/i18n/fr.json").status_code == 404
    assert httpx.get(f"{ui_service.base_url}/admin/static/js/nope.js").status_code == 404
    assert httpx.get(f"{ui_service.base_url}/admin/static/../../config.py").status_code == 404


def test_the_ui_is_not_part_of_the_public_api_document(ui_service: UiService) -> None:
    paths = httpx.get(f"{ui_service.base_url}/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/admin")]


def static_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in STATIC_DIR.rglob("*") if p.suffix in suffixes)


def test_nothing_is_loaded_from_another_origin_and_no_markup_is_built_from_strings() -> None:
    """Air-gapped networks: no CDN, no remote font; and no innerHTML/eval anywhere."""
    # Names, not addresses: the SVG namespace and JSON Schema's dialect identifier.
    identifiers = ("http://www.w3.org/2000/svg", "https://json-schema.org/draft/2020-12/schema")
    for path in static_files(".js", ".css", ".html"):
        source = path.read_text(encoding="utf-8")
        for identifier in identifiers:
            source = source.replace(identifier, "")
        assert not re.search(r"https?://", source), f"{path.name} names another origin"
        assert not re.search(r"@import|url\(\s*['\"]?(?!data:)", source) or path.suffix != ".css"
        if path.suffix == ".js":
            assert not re.search(r"\.innerHTML|outerHTML|insertAdjacentHTML|\beval\(|new Function",
                                 source), f"{path.name} builds markup or code from strings"
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", index) and " style=" not in index


def test_every_message_exists_in_both_languages_and_every_key_used_is_defined() -> None:
    assert catalogues.check() == []
    defined = set(catalogues.catalogue("vi"))
    used: set[str] = set()
    for path in static_files(".js"):
        used |= set(re.findall(r"\bt\(\s*'([a-z_]+\.[a-z0-9_]+)'", path.read_text("utf-8")))
    assert used, "no message keys found"
    assert sorted(used - defined) == []
    for language in catalogues.LANGUAGES:
        messages = catalogues.catalogue(language).values()
        assert all(isinstance(v, str) and v.strip() for v in messages), language
