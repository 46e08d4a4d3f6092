"""The form lifecycle over the API: drafts, immutable numbered versions, diffs, deprecation,
inheritance down the tree, variants checked at publication and flagged for review, and the
dry-run validation the form builder's preview uses. Every case runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.forms import validators
from tests.conftest import Backend
from tests.platform import Credentials, Platform

FORMS = Path(__file__).resolve().parents[1] / "forms"


def catalogue(name: str) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads((FORMS / name / "form.json").read_text())
    return definition


def sample(name: str, kind: str = "valid") -> dict[str, Any]:
    path = sorted((FORMS / name / kind).glob("*.json"))[0]
    data: dict[str, Any] = json.loads(path.read_text())
    return data if kind == "valid" else data["data"]


def forms_url(tenant: str, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant}/forms{suffix}"


async def published(client: httpx.AsyncClient, tenant: str, who: Credentials,
                    definition: dict[str, Any]) -> dict[str, Any]:
    created = await client.post(forms_url(tenant), json=definition, headers=who.headers)
    assert created.status_code == 201, created.text
    key = definition["key"]
    done = await client.post(forms_url(tenant, f"/{key}/versions/1/publish"), headers=who.headers)
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


async def count(backend: Backend, table: str) -> int:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    finally:
        await engine.dispose()


async def test_draft_publish_and_immutability(client: httpx.AsyncClient, platform: Platform,
                                              backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue("ho-kinh-doanh")
    created = await client.post(forms_url(province), json=definition, headers=admin.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["draft_version"], body["latest_version"]) == ("draft", 1, None)

    changed = copy.deepcopy(definition)
    changed["title"]["en"] = "Household business registration (draft 2)"
    put = await client.put(forms_url(province, "/ho-kinh-doanh/versions/1"), json=changed,
                           headers=admin.headers)
    assert put.status_code == 200, put.text

    done = await client.post(forms_url(province, "/ho-kinh-doanh/versions/1/publish"),
                             headers=admin.headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "published" and done.json()["published_by"]

    again = await client.put(forms_url(province, "/ho-kinh-doanh/versions/1"), json=definition,
                             headers=admin.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "version-immutable"
    assert "POST .../versions" in again.json()["detail"]
    twice = await client.post(forms_url(province, "/ho-kinh-doanh/versions/1/publish"),
                              headers=admin.headers)
    assert twice.status_code == 409
    gone = await client.delete(forms_url(province, "/ho-kinh-doanh/versions/1"),
                               headers=admin.headers)
    assert gone.status_code == 409

    read = await client.get(forms_url(province, "/ho-kinh-doanh"), headers=admin.headers)
    assert read.json()["status"] == "published" and read.json()["latest_version"] == 1
    assert read.json()["definition"]["title"]["en"].endswith("(draft 2)")


async def test_the_database_refuses_to_change_a_published_version(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    """Even a write that bypasses the service (and both tenant walls) cannot rewrite or
    delete a published version."""
    province, admin = await platform.province_with_admin()
    definition = catalogue("khieu-nai")
    await published(client, province, admin, definition)
    engine = backend.superuser_engine()
    try:
        for statement in ("UPDATE form_versions SET digest = 'x' WHERE status = 'published'",
                          "DELETE FROM form_versions WHERE status = 'published'"):
            with pytest.raises(DBAPIError, match="immutable"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        async with engine.begin() as conn:  # deprecating is the one change allowed
            result = await conn.execute(text(
                "UPDATE form_versions SET status = 'deprecated' WHERE status = 'published' "
                "AND definition IS NOT NULL"))
            assert result.rowcount >= 1
        with pytest.raises(DBAPIError, match="immutable"):
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE form_versions SET status = 'published' "
                                        "WHERE status = 'deprecated'"))
    finally:
        await engine.dispose()


async def test_versions_are_numbered_and_diffable(client: httpx.AsyncClient,
                                                  platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue("ho-kinh-doanh")
    await published(client, province, admin, definition)

    copied = await client.post(forms_url(province, "/ho-kinh-doanh/versions"),
                               headers=admin.headers)
    assert copied.status_code == 201 and copied.json()["number"] == 2
    assert copied.json()["definition"] == definition
    second = await client.post(forms_url(province, "/ho-kinh-doanh/versions"),
                               headers=admin.headers)
    assert second.status_code == 409 and second.json()["code"] == "draft-exists"

    v2 = copy.deepcopy(definition)
    v2["schema"]["properties"]["ma_so_thue"] = {"type": "string", "pattern": "^[0-9]{10}$"}
    v2["schema"]["required"].append("ma_so_thue")
    v2["ui_schema"]["fields"]["ma_so_thue"] = {"label": {"vi": "Mã số thuế", "en": "Tax code"}}
    del v2["schema"]["properties"]["website"]
    del v2["ui_schema"]["fields"]["website"]
    for section in v2["ui_schema"].get("sections", []):
        section["fields"] = [n for n in section["fields"] if n != "website"]
    if "order" in v2["ui_schema"]:
        v2["ui_schema"]["order"].remove("website")
    put = await client.put(forms_url(province, "/ho-kinh-doanh/versions/2"), json=v2,
                           headers=admin.headers)
    assert put.status_code == 200, put.text
    await client.post(forms_url(province, "/ho-kinh-doanh/versions/2/publish"),
                      headers=admin.headers)

    diff = await client.get(forms_url(province, "/ho-kinh-doanh/versions/1/diff/2"),
                            headers=admin.headers)
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert (body["from"], body["to"], body["same"]) == (1, 2, False)
    assert body["fields"]["added"] == ["ma_so_thue"]
    assert body["fields"]["removed"] == ["website"]
    assert body["fields"]["now_required"] == ["ma_so_thue"]
    ops = {(op["op"], op["path"]) for op in body["patch"]}
    assert ("add", "/schema/properties/ma_so_thue") in ops
    assert ("remove", "/schema/properties/website") in ops
    same = await client.get(forms_url(province, "/ho-kinh-doanh/versions/2/diff/2"),
                            headers=admin.headers)
    assert same.json()["same"] is True and same.json()["patch"] == []

    listed = await client.get(forms_url(province, "/ho-kinh-doanh/versions"),
                              headers=admin.headers)
    assert [v["number"] for v in listed.json()] == [2, 1]
    assert all(v["definition"] is None for v in listed.json())


async def test_deprecation_stops_new_submissions_but_keeps_old_ones(
        client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue("ho-kinh-doanh")
    await published(client, province, admin, definition)
    url = f"/api/v1/tenants/{province}/submissions"
    first = await client.post(url, json={"form": "ho-kinh-doanh",
                                         "data": sample("ho-kinh-doanh")},
                              headers=admin.headers)
    assert first.status_code == 201, first.text

    dep = await client.post(forms_url(province, "/ho-kinh-doanh/versions/1/deprecate"),
                            headers=admin.headers)
    assert dep.status_code == 200 and dep.json()["status"] == "deprecated"
    refused = await client.post(url, json={"form": "ho-kinh-doanh",
                                           "data": sample("ho-kinh-doanh")},
                                headers=admin.headers)
    assert refused.status_code == 422 and refused.json()["code"] == "form-version-unusable"
    kept = await client.get(f"{url}/{first.json()['id']}", headers=admin.headers)
    assert kept.status_code == 200 and kept.json()["form"]["version"] == 1


async def test_a_form_published_above_is_usable_below(client: httpx.AsyncClient,
                                                      platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    officer = await platform.client_for(commune, ["tenant_admin"], by=admin)
    await client.post(forms_url(province), json=catalogue("khieu-nai"), headers=admin.headers)
    listed = await client.get(forms_url(commune), headers=officer.headers)
    assert listed.json()["items"] == [], "an unpublished ancestor draft is not usable below"

    await client.post(forms_url(province, "/khieu-nai/versions/1/publish"),
                      headers=admin.headers)
    listed = await client.get(forms_url(commune), headers=officer.headers)
    (item,) = listed.json()["items"]
    # The province is above the commune admin's grant, so it is not named.
    assert (item["key"], item["tenant"], item["inherited"]) == ("khieu-nai", None, True)
    assert item["draft_version"] is None

    made = await client.post(f"/api/v1/tenants/{commune}/submissions",
                             json={"form": "khieu-nai", "data": sample("khieu-nai")},
                             headers=officer.headers)
    assert made.status_code == 201, made.text
    assert made.json()["form"] == {"key": "khieu-nai", "tenant": None, "version": 1}
    assert made.json()["tenant"] == commune

    # The ancestor's form is read-only below; the commune gets its own only as a variant.
    edit = await client.post(forms_url(commune, "/khieu-nai/versions"), headers=officer.headers)
    assert edit.status_code == 403 and edit.json()["code"] == "inherited-read-only"


def _narrowed(parent: dict[str, Any]) -> dict[str, Any]:
    variant = copy.deepcopy(parent)
    variant["title"]["vi"] = "Đăng ký hộ kinh doanh (phường Hoàn Kiếm)"
    variant["schema"]["properties"]["so_to_dan_pho"] = {"type": "integer", "minimum": 1}
    variant["ui_schema"]["fields"]["so_to_dan_pho"] = {
        "label": {"vi": "Số tổ dân phố", "en": "Residential group"}}
    return variant


async def test_variants_extend_and_are_checked_at_publication(
        client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    commune_admin = await platform.client_for(commune, ["tenant_admin"], by=admin)
    parent = catalogue("ho-kinh-doanh")
    await published(client, province, admin, parent)

    loose = copy.deepcopy(parent)
    loose["schema"]["required"].remove("ten_ho_kinh_doanh")
    made = await client.post(forms_url(commune), json=loose, headers=commune_admin.headers)
    assert made.status_code == 201, made.text
    refused = await client.post(forms_url(commune, "/ho-kinh-doanh/versions/1/publish"),
                                headers=commune_admin.headers)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "variant-not-narrowing"
    assert "version 1" in problem["detail"]
    assert any("ten_ho_kinh_doanh" in e["detail"] for e in problem["errors"])
    assert all(e["pointer"].startswith("/") and e["detail_vi"] for e in problem["errors"])

    fixed = await client.put(forms_url(commune, "/ho-kinh-doanh/versions/1"),
                             json=_narrowed(parent), headers=commune_admin.headers)
    assert fixed.status_code == 200, fixed.text
    ok = await client.post(forms_url(commune, "/ho-kinh-doanh/versions/1/publish"),
                           headers=commune_admin.headers)
    assert ok.status_code == 200, ok.text
    variant = (await client.get(forms_url(commune, "/ho-kinh-doanh"),
                                headers=admin.headers)).json()
    assert variant["inherited"] is False and variant["tenant"] == commune
    assert variant["parent"] == {"tenant": province, "version": 1}
    assert variant["needs_review"] is False

    # The parent publishes again: the variant is flagged, and keeps working meanwhile.
    await client.post(forms_url(province, "/ho-kinh-doanh/versions"), headers=admin.headers)
    again = await client.post(forms_url(province, "/ho-kinh-doanh/versions/2/publish"),
                              headers=admin.headers)
    assert again.json()["variants_flagged"] == 1
    variant = (await client.get(forms_url(commune, "/ho-kinh-doanh"),
                                headers=admin.headers)).json()
    assert variant["needs_review"] is True and "version 2" in variant["review_reason"]
    data = {**sample("ho-kinh-doanh"), "so_to_dan_pho": 7}
    used = await client.post(f"/api/v1/tenants/{commune}/submissions",
                             json={"form": "ho-kinh-doanh", "data": data},
                             headers=commune_admin.headers)
    assert used.status_code == 201, used.text
    assert used.json()["form"] == {"key": "ho-kinh-doanh", "tenant": commune, "version": 1}

    # Publishing a new variant version re-checks it against the parent's v2 and clears it.
    await client.post(forms_url(commune, "/ho-kinh-doanh/versions"),
                      headers=commune_admin.headers)
    await client.post(forms_url(commune, "/ho-kinh-doanh/versions/2/publish"),
                      headers=commune_admin.headers)
    variant = (await client.get(forms_url(commune, "/ho-kinh-doanh"),
                                headers=admin.headers)).json()
    assert variant["needs_review"] is False
    assert variant["parent"] == {"tenant": province, "version": 2}


async def test_dry_run_validation_stores_nothing(client: httpx.AsyncClient, platform: Platform,
                                                backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue("thi-nang-ngach")
    await client.post(forms_url(province), json=definition, headers=admin.headers)
    before = (await count(backend, "submissions"), await count(backend, "audit_records"))
    url = forms_url(province, "/thi-nang-ngach/validate")

    good = await client.post(url, json={"data": sample("thi-nang-ngach")},
                             headers=admin.headers)
    assert good.status_code == 200, good.text
    assert good.json() == {"valid": True, "version": 1, "errors": []}
    bad = await client.post(url, json={"data": {"ho_ten": 5, "khong_co": 1}},
                            headers=admin.headers)
    assert bad.status_code == 200
    body = bad.json()
    assert body["valid"] is False
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/ho_ten", "/khong_co", "/ngay_sinh"} <= pointers
    assert all(e["detail"] and e["detail_vi"] for e in body["errors"])
    missing = await client.post(url, json={"data": {}, "version": 9}, headers=admin.headers)
    assert missing.status_code == 404
    assert (await count(backend, "submissions"), await count(backend, "audit_records")) == before


async def test_dry_run_against_an_unsaved_definition(client: httpx.AsyncClient,
                                                    platform: Platform, backend: Backend) -> None:
    """The builder's live preview: data checked against a definition that is not saved."""
    province, admin = await platform.province_with_admin()
    _, other = await platform.province_with_admin()
    definition = catalogue("thi-nang-ngach")
    await client.post(forms_url(province), json=definition, headers=admin.headers)
    versions = forms_url(province, "/thi-nang-ngach/versions")
    stored = (await client.get(versions, headers=admin.headers)).json()
    before = (await count(backend, "form_versions"), await count(backend, "audit_records"))
    url = forms_url(province, "/thi-nang-ngach/validate")
    cached = set(validators._cache)
    edited = copy.deepcopy(definition)
    edited["schema"]["properties"]["ghi_chu"] = {"type": "string", "maxLength": 3}
    edited["schema"]["required"].append("ghi_chu")
    edited["ui_schema"]["fields"]["ghi_chu"] = {"label": {"vi": "Ghi chú", "en": "Note"}}

    answer = await client.post(url, json={"data": sample("thi-nang-ngach"),
                                          "definition": edited}, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["valid"] is False and answer.json()["version"] is None
    assert [e["pointer"] for e in answer.json()["errors"]] == ["/ghi_chu"]  # it is missing
    fine = await client.post(url, json={"data": {**sample("thi-nang-ngach"), "ghi_chu": "ok"},
                                        "definition": edited}, headers=admin.headers)
    assert fine.json() == {"valid": True, "version": None, "errors": []}

    # An unusable definition is a 422 pointing into it; both version and definition, too.
    edited["ui_schema"]["fields"]["ghi_chu"]["widget"] = "khong-co"
    broken = await client.post(url, json={"data": {}, "definition": edited},
                               headers=admin.headers)
    assert broken.status_code == 422 and broken.json()["code"] == "invalid-form"
    assert "/definition/ui_schema/fields/ghi_chu/widget" in {
        e["pointer"] for e in broken.json()["errors"]}
    both = await client.post(url, json={"data": {}, "definition": definition, "version": 1},
                             headers=admin.headers)
    assert both.status_code == 422
    assert [e["pointer"] for e in both.json()["errors"]] == ["/version"]

    # Another province's admin reaches nothing through it.
    refused = await client.post(url, json={"data": {}, "definition": definition},
                                headers=other.headers)
    assert refused.status_code in (403, 404)
    assert (await count(backend, "form_versions"), await count(backend, "audit_records")) == before
    assert (await client.get(versions, headers=admin.headers)).json() == stored
    # Nor does it take places in the cache of compiled stored versions.
    assert set(validators._cache) == cached


BAD_DEFINITIONS = {
    "malformed schema": lambda d: d["schema"].update({"properties": {"x": {"type": "chuoi"}}}),
    "remote $ref": lambda d: d["schema"].update(
        {"properties": {**d["schema"]["properties"],
                        "x": {"$ref": "https://example.com/schema.json"}}}),
    "catastrophic regex": lambda d: d["schema"]["properties"].update(
        {"x": {"type": "string", "pattern": "^(a+)+$"}}),
    "not an object root": lambda d: d["schema"].update({"type": "array"}),
}


@pytest.mark.parametrize("case", sorted(BAD_DEFINITIONS))
async def test_bad_definitions_are_refused_and_leave_nothing(
        case: str, client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue("khieu-nai")
    BAD_DEFINITIONS[case](definition)
    before = (await count(backend, "forms"), await count(backend, "form_versions"))
    response = await client.post(forms_url(province), json=definition, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["pointer"].startswith("/schema/") for e in response.json()["errors"])
    assert (await count(backend, "forms"), await count(backend, "form_versions")) == before


async def test_a_sibling_units_form_is_not_usable(client: httpx.AsyncClient,
                                                  platform: Platform) -> None:
    """Only the lineage's forms resolve: another province's form, even under a known key, is
    neither readable nor usable for submissions."""
    province_a, admin_a = await platform.province_with_admin()
    province_b, admin_b = await platform.province_with_admin()
    definition = {**catalogue("khieu-nai"), "key": "khieu-nai-rieng"}
    await published(client, province_a, admin_a, definition)
    read = await client.get(forms_url(province_b, "/khieu-nai-rieng"), headers=admin_b.headers)
    assert read.status_code == 404
    used = await client.post(f"/api/v1/tenants/{province_b}/submissions",
                             json={"form": "khieu-nai-rieng", "data": sample("khieu-nai")},
                             headers=admin_b.headers)
    assert used.status_code == 404
