"""Workflow definitions over the API: drafts, publish-time checks against the tenant's roles
and forms, immutable numbered versions, diffs, inheritance, one workflow per form, and the
simulator. Every case runs on SQLite and PostgreSQL.
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

from tests.conftest import Backend
from tests.platform import Credentials, Platform
from tests.test_forms import catalogue as form_catalogue
from tests.test_forms import count
from tests.test_forms import published as published_form

ROOT = Path(__file__).resolve().parents[1] / "workflows"


def catalogue(key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / key / "workflow.json").read_text())
    return document


def simulation(key: str, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (ROOT / key / "simulations" / f"{name}.json").read_text())
    return document


def url(tenant: str, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant}/workflows{suffix}"


async def create(client: httpx.AsyncClient, tenant: str, who: Credentials,
                 definition: dict[str, Any]) -> httpx.Response:
    return await client.post(url(tenant), json=definition, headers=who.headers)


async def province_with_form(platform: Platform, client: httpx.AsyncClient,
                             form: str = "ho-kinh-doanh") -> tuple[str, Credentials]:
    province, admin = await platform.province_with_admin()
    await published_form(client, province, admin, form_catalogue(form))
    return province, admin


async def test_draft_publish_and_immutability(client: httpx.AsyncClient,
                                              platform: Platform) -> None:
    province, admin = await province_with_form(platform, client)
    definition = catalogue("ho-kinh-doanh")
    created = await create(client, province, admin, definition)
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["draft_version"]) == ("draft", 1)

    done = await client.post(url(province, "/ho-kinh-doanh/versions/1/publish"),
                             headers=admin.headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "published"
    again = await client.put(url(province, "/ho-kinh-doanh/versions/1"), json=definition,
                             headers=admin.headers)
    assert (again.status_code, again.json()["code"]) == (409, "version-immutable")
    gone = await client.delete(url(province, "/ho-kinh-doanh/versions/1"),
                               headers=admin.headers)
    assert gone.status_code == 409
    read = await client.get(url(province, "/ho-kinh-doanh"), headers=admin.headers)
    assert (read.json()["latest_version"], read.json()["definition"]) == (1, definition)


async def test_a_draft_may_be_unfinished_but_its_shape_is_checked(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    province, admin = await province_with_form(platform, client)
    before = await count(backend, "workflows")
    bad = catalogue("ho-kinh-doanh")
    bad["states"][0]["type"] = "beginning"
    bad["actions"][0]["guard"] = {"$ref": "#/elsewhere"}
    refused = await create(client, province, admin, bad)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "invalid-workflow"
    assert "/states/0/type" in {e["pointer"] for e in refused.json()["errors"]}
    assert await count(backend, "workflows") == before

    unfinished = catalogue("ho-kinh-doanh")
    unfinished["states"].append({"name": "chua_noi", "type": "task",
                                 "title": {"vi": "Chưa nối", "en": "Not wired"}})
    saved = await create(client, province, admin, unfinished)
    assert saved.status_code == 201, saved.text


async def test_publish_names_every_state_and_action_at_fault(client: httpx.AsyncClient,
                                                             platform: Platform) -> None:
    province, admin = await platform.province_with_admin()  # no form published yet
    definition = catalogue("ho-kinh-doanh")
    definition["states"].append({"name": "mo_coi", "type": "task",
                                 "title": {"vi": "Mồ côi", "en": "Orphan"}})
    definition["actions"][0]["roles"].append("thu_ky_xa")
    definition["actions"].append(copy.deepcopy(definition["actions"][0]))
    signed = next(i for i, a in enumerate(definition["actions"]) if "signature" in a)
    del definition["actions"][signed]["signature"]["role"]
    assert (await create(client, province, admin, definition)).status_code == 201
    refused = await client.post(url(province, "/ho-kinh-doanh/versions/1/publish"),
                                headers=admin.headers)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == "workflow-not-publishable"
    found = {e["pointer"]: e["keyword"] for e in body["errors"]}
    last = len(definition["actions"]) - 1
    assert found[f"/states/{len(definition['states']) - 1}"] == "unreachable"
    assert found["/form"] == "unknown-form"
    assert found["/actions/0/roles/1"] == "unknown-role"
    assert found[f"/actions/{last}/name"] == "duplicate"
    assert found[f"/actions/{signed}/signature"] == "signer"
    assert all(e["detail"] and e["detail_vi"] for e in body["errors"])
    status = await client.get(url(province, "/ho-kinh-doanh"), headers=admin.headers)
    assert status.json()["latest_version"] is None


async def test_custom_roles_and_forms_become_known_when_defined(client: httpx.AsyncClient,
                                                                platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue("ho-kinh-doanh")
    definition["actions"][0]["roles"] = ["mot_cua"]
    assert (await create(client, province, admin, definition)).status_code == 201
    publish = url(province, "/ho-kinh-doanh/versions/1/publish")
    first = await client.post(publish, headers=admin.headers)
    assert {e["keyword"] for e in first.json()["errors"]} == {"unknown-form", "unknown-role"}
    await published_form(client, province, admin, form_catalogue("ho-kinh-doanh"))
    await platform.role_for(province, "mot_cua", ["cases:act"], by=admin)
    done = await client.post(publish, headers=admin.headers)
    assert done.status_code == 200, done.text


async def test_guards_must_name_form_or_action_fields(client: httpx.AsyncClient,
                                                      platform: Platform) -> None:
    province, admin = await province_with_form(platform, client)
    definition = catalogue("ho-kinh-doanh")
    definition["actions"][0]["guard"] = {
        "required": ["so_giay_phep_xay_dung"],
        "properties": {"dia_chi_tru_so": {"required": ["tinh_thanh_pho"]},
                       "nganh_nghe": {"contains": {"properties": {"ma_nganh": {"const": "4711"},
                                                                  "ma_nganh_cu": True}}}}}
    assert (await create(client, province, admin, definition)).status_code == 201
    refused = await client.post(url(province, "/ho-kinh-doanh/versions/1/publish"),
                                headers=admin.headers)
    assert [(e["pointer"], e["keyword"]) for e in refused.json()["errors"]] == [
        ("/actions/0/guard/properties/dia_chi_tru_so/required/0", "unknown-field"),
        ("/actions/0/guard/properties/nganh_nghe/contains/properties/ma_nganh_cu",
         "unknown-field"),
        ("/actions/0/guard/required/0", "unknown-field")]
    assert "dia_chi_tru_so.tinh_thanh_pho" in refused.json()["errors"][0]["detail"]


async def test_the_database_refuses_to_change_a_published_version(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    province, admin = await province_with_form(platform, client)
    await create(client, province, admin, catalogue("ho-kinh-doanh"))
    await client.post(url(province, "/ho-kinh-doanh/versions/1/publish"), headers=admin.headers)
    engine = backend.superuser_engine()
    try:
        for statement in (
                "UPDATE workflow_versions SET digest = 'x' WHERE status = 'published'",
                "DELETE FROM workflow_versions WHERE status = 'published'"):
            with pytest.raises(DBAPIError, match="immutable"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_versions_diff_by_state_and_action(client: httpx.AsyncClient,
                                                 platform: Platform) -> None:
    province, admin = await province_with_form(platform, client)
    definition = catalogue("ho-kinh-doanh")
    await create(client, province, admin, definition)
    await client.post(url(province, "/ho-kinh-doanh/versions/1/publish"), headers=admin.headers)
    v2 = copy.deepcopy(definition)
    v2["states"].insert(2, {"name": "tham_tra_thuc_dia", "type": "task",
                            "title": {"vi": "Thẩm tra thực địa", "en": "Site check"}})
    first = v2["actions"][0]
    v2["actions"].append({"name": "di_thuc_dia", "title": {"vi": "Đi", "en": "Go"},
                          "from": first["to"], "to": "tham_tra_thuc_dia",
                          "roles": ["officer"]})
    v2["actions"].append({"name": "ve_tu_thuc_dia", "title": {"vi": "Về", "en": "Back"},
                          "from": "tham_tra_thuc_dia", "to": first["to"],
                          "roles": ["officer"]})
    v2["states"][0]["title"]["en"] = "Received"
    drafted = await client.post(url(province, "/ho-kinh-doanh/versions"), json=v2,
                                headers=admin.headers)
    assert drafted.status_code == 201 and drafted.json()["number"] == 2
    diff = await client.get(url(province, "/ho-kinh-doanh/versions/1/diff/2"),
                            headers=admin.headers)
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert (body["from"], body["to"], body["same"]) == (1, 2, False)
    assert body["states"] == {"added": ["tham_tra_thuc_dia"], "removed": [],
                              "changed": [v2["states"][0]["name"]]}
    assert body["actions"]["added"] == ["di_thuc_dia", "ve_tu_thuc_dia"]
    assert body["patch"]
    done = await client.post(url(province, "/ho-kinh-doanh/versions/2/publish"),
                             headers=admin.headers)
    assert done.status_code == 200, done.text


async def test_one_workflow_per_form_at_a_tenant(client: httpx.AsyncClient,
                                                 platform: Platform) -> None:
    province, admin = await province_with_form(platform, client)
    await create(client, province, admin, catalogue("ho-kinh-doanh"))
    await client.post(url(province, "/ho-kinh-doanh/versions/1/publish"), headers=admin.headers)
    other = {**catalogue("ho-kinh-doanh"), "key": "ho-kinh-doanh-2"}
    await create(client, province, admin, other)
    refused = await client.post(url(province, "/ho-kinh-doanh-2/versions/1/publish"),
                                headers=admin.headers)
    assert (refused.status_code, refused.json()["code"]) == (409, "form-already-bound")
    assert refused.json()["errors"][0]["pointer"] == "/form"
    await client.post(url(province, "/ho-kinh-doanh/versions/1/deprecate"),
                      headers=admin.headers)
    done = await client.post(url(province, "/ho-kinh-doanh-2/versions/1/publish"),
                             headers=admin.headers)
    assert done.status_code == 200, done.text


async def test_inherited_below_and_read_only_there(client: httpx.AsyncClient,
                                                   platform: Platform) -> None:
    province, admin = await province_with_form(platform, client)
    commune = await platform.tenant(province, "commune", by=admin)
    commune_admin = await platform.client_for(commune, ["tenant_admin"], by=admin)
    await create(client, province, admin, catalogue("ho-kinh-doanh"))
    listed = await client.get(url(commune), headers=commune_admin.headers)
    assert listed.json()["items"] == []  # a draft above is the province's business
    await client.post(url(province, "/ho-kinh-doanh/versions/1/publish"), headers=admin.headers)
    listed = await client.get(url(commune), headers=commune_admin.headers)
    assert [(w["key"], w["inherited"]) for w in listed.json()["items"]] == [
        ("ho-kinh-doanh", True)]
    changed = await client.post(url(commune, "/ho-kinh-doanh/versions"),
                                headers=commune_admin.headers)
    assert (changed.status_code, changed.json()["code"]) == (403, "inherited-read-only")


async def test_simulate_runs_the_catalogue_without_storing_anything(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    province, admin = await province_with_form(platform, client)
    await create(client, province, admin, catalogue("ho-kinh-doanh"))
    sample = simulation("ho-kinh-doanh", next(
        p.stem for p in sorted((ROOT / "ho-kinh-doanh" / "simulations").glob("*.json"))
        if len(json.loads(p.read_text())["expect"]["path"]) > 5))
    tables = ("workflows", "workflow_versions", "submissions", "audit_records")
    before = [await count(backend, t) for t in tables]
    ran = await client.post(url(province, "/ho-kinh-doanh/simulate"), headers=admin.headers,
                            json={"data": sample["data"], "steps": sample["steps"]})
    assert ran.status_code == 200, ran.text
    body = ran.json()
    assert (body["version"], body["path"], body["state"]) == (
        1, sample["expect"]["path"], sample["expect"]["state"])
    assert body["refused"] is None and body["problems"] == []
    assert [s["from"] for s in body["steps"] if s["moved"]] == sample["expect"]["path"][:-1]
    assert [await count(backend, t) for t in tables] == before


async def test_simulate_reports_the_refusal_and_bad_samples(client: httpx.AsyncClient,
                                                            platform: Platform) -> None:
    province, admin = await province_with_form(platform, client)
    await create(client, province, admin, catalogue("ho-kinh-doanh"))
    refusing = next(json.loads(p.read_text()) for p in
                    sorted((ROOT / "ho-kinh-doanh" / "simulations").glob("*.json"))
                    if json.loads(p.read_text())["expect"]["refused"])
    ran = await client.post(url(province, "/ho-kinh-doanh/simulate"), headers=admin.headers,
                            json={"data": refusing["data"], "steps": refusing["steps"]})
    assert ran.status_code == 200, ran.text
    assert ran.json()["refused"]["step"] == refusing["expect"]["refused"]["step"]
    assert ran.json()["refused"]["code"] == refusing["expect"]["refused"]["code"]
    assert ran.json()["refused"]["detail_vi"]

    bad = await client.post(url(province, "/ho-kinh-doanh/simulate"), headers=admin.headers,
                            json={"data": {"ten_ho_kinh_doanh": 5}, "steps": []})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid-sample"
    assert "/data/ten_ho_kinh_doanh" in {e["pointer"] for e in bad.json()["errors"]}
    extra = await client.post(url(province, "/ho-kinh-doanh/simulate"), headers=admin.headers,
                              json={"data": refusing["data"], "steps": [{"action": "x"}]})
    assert extra.status_code == 422
    assert any(e["pointer"].startswith("/steps/0") for e in extra.json()["errors"])


async def test_a_commune_publishes_a_narrowing_variant(client: httpx.AsyncClient,
                                                       platform: Platform) -> None:
    province, admin = await province_with_form(platform, client)
    commune = await platform.tenant(province, "commune", by=admin)
    commune_admin = await platform.client_for(commune, ["tenant_admin"], by=admin)
    parent = catalogue("ho-kinh-doanh")
    await create(client, province, admin, parent)
    await client.post(url(province, "/ho-kinh-doanh/versions/1/publish"), headers=admin.headers)

    local = copy.deepcopy(parent)
    first = local["actions"][0]
    target, first["to"] = first["to"], "xa_ra_soat"
    local["states"].append({"name": "xa_ra_soat", "type": "task",
                            "title": {"vi": "Xã rà soát", "en": "Commune check"}})
    local["actions"].append({"name": "xa_ra_soat_xong", "title": {"vi": "Xong", "en": "Done"},
                             "from": "xa_ra_soat", "to": target, "roles": ["officer"]})
    loose = copy.deepcopy(local)
    loose["actions"][0]["roles"].append("api_client")
    assert (await create(client, commune, commune_admin, loose)).status_code == 201
    publish = url(commune, "/ho-kinh-doanh/versions/1/publish")
    refused = await client.post(publish, headers=commune_admin.headers)
    assert (refused.status_code, refused.json()["code"]) == (422, "variant-not-narrowing")
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/actions/0/roles"]
    await client.put(url(commune, "/ho-kinh-doanh/versions/1"), json=local,
                     headers=commune_admin.headers)
    done = await client.post(publish, headers=commune_admin.headers)
    assert done.status_code == 200, done.text
    read = await client.get(url(commune, "/ho-kinh-doanh"), headers=commune_admin.headers)
    assert read.json()["inherited"] is False
    assert read.json()["parent"] == {"tenant": None, "version": 1}  # above its grants

    await client.post(url(province, "/ho-kinh-doanh/versions"), headers=admin.headers)
    again = await client.post(url(province, "/ho-kinh-doanh/versions/2/publish"),
                              headers=admin.headers)
    assert again.json()["variants_flagged"] == 1
    flagged = await client.get(url(commune, "/ho-kinh-doanh"), headers=commune_admin.headers)
    assert flagged.json()["needs_review"] is True
