"""Submissions over the API: pinned versions, server-side validation with every error,
idempotency, drafts, masking of personal data, listing, filtering and search within the
caller's tenants, and personal data kept out of logs and the audit trail."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import Backend
from tests.platform import Credentials, Platform
from tests.test_forms import FORMS, catalogue, count, forms_url, published, sample

FORM = "ho-kinh-doanh"


def submissions_url(tenant: str, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant}/submissions{suffix}"


async def submit(client: httpx.AsyncClient, tenant: str, who: Credentials, data: dict[str, Any],
                 **extra: Any) -> httpx.Response:
    return await client.post(submissions_url(tenant), json={"form": FORM, "data": data, **extra},
                             headers=who.headers)


async def test_a_submission_pins_its_version_for_good(client: httpx.AsyncClient,
                                                      platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue(FORM)
    await published(client, province, admin, definition)
    first = await submit(client, province, admin, sample(FORM))
    assert first.status_code == 201, first.text
    assert first.json()["form"] == {"key": FORM, "tenant": province, "version": 1}

    # Version 2 requires a new field: the old submission stays readable and valid as made.
    v2 = copy.deepcopy(definition)
    v2["schema"]["properties"]["ma_so_thue"] = {"type": "string", "pattern": "^[0-9]{10}$"}
    v2["schema"]["required"].append("ma_so_thue")
    v2["ui_schema"]["fields"]["ma_so_thue"] = {"label": {"vi": "Mã số thuế", "en": "Tax code"}}
    await client.post(forms_url(province, f"/{FORM}/versions"), json=v2, headers=admin.headers)
    await client.post(forms_url(province, f"/{FORM}/versions/2/publish"), headers=admin.headers)

    old = await client.get(submissions_url(province, f"/{first.json()['id']}"),
                           headers=admin.headers)
    assert old.json()["form"]["version"] == 1
    assert old.json()["data"] == sample(FORM)
    now = await submit(client, province, admin, sample(FORM))
    assert now.status_code == 422
    assert [e["pointer"] for e in now.json()["errors"]] == ["/data/ma_so_thue"]
    pinned = await submit(client, province, admin, sample(FORM), version=1)
    assert pinned.status_code == 201 and pinned.json()["form"]["version"] == 1


async def test_validation_lists_every_error_and_writes_nothing(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    data = sample(FORM)
    data["chu_ho_ngay_sinh"] = "1979-13-01"
    data["email"] = "khong-phai-email"
    data["truong_la"] = "x"
    del data["ten_ho_kinh_doanh"]
    before = await count(backend, "submissions")
    response = await submit(client, province, admin, data)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid-submission"
    by_pointer = {e["pointer"]: e for e in problem["errors"]}
    assert set(by_pointer) == {"/data/chu_ho_ngay_sinh", "/data/email", "/data/truong_la",
                               "/data/ten_ho_kinh_doanh"}
    assert by_pointer["/data/truong_la"]["keyword"] == "unknown-field"
    assert all(e["detail"] and e["detail_vi"] for e in problem["errors"])
    assert "khong-phai-email" not in response.text, "errors never echo submitted values"
    assert await count(backend, "submissions") == before


async def test_idempotency_key_creates_once(client: httpx.AsyncClient, platform: Platform,
                                            backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    headers = {**admin.headers, "Idempotency-Key": f"hkd-{uuid.uuid4()}"}
    body = {"form": FORM, "data": sample(FORM)}
    before = await count(backend, "submissions")
    first = await client.post(submissions_url(province), json=body, headers=headers)
    again = await client.post(submissions_url(province), json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert await count(backend, "submissions") == before + 1
    other = await client.post(submissions_url(province), headers=headers,
                              json={**body, "data": {**sample(FORM), "so_lao_dong": 9}})
    assert other.status_code == 422


async def test_drafts_change_then_submit_and_submitted_never_change(
        client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    draft = await submit(client, province, admin, {"ten_ho_kinh_doanh": "Hộ kinh doanh A"},
                         status="draft")
    assert draft.status_code == 201 and draft.json()["status"] == "draft"
    url = submissions_url(province, f"/{draft.json()['id']}")
    incomplete = await client.patch(url, json={"status": "submitted"}, headers=admin.headers)
    assert incomplete.status_code == 422
    done = await client.patch(url, json={"data": sample(FORM), "status": "submitted"},
                              headers=admin.headers)
    assert done.status_code == 200 and done.json()["submitted_at"]
    frozen = await client.patch(url, json={"data": {}}, headers=admin.headers)
    assert frozen.status_code == 409 and frozen.json()["code"] == "submission-final"
    assert (await client.delete(url, headers=admin.headers)).status_code == 409

    doomed = await submit(client, province, admin, {}, status="draft")
    gone = await client.delete(submissions_url(province, f"/{doomed.json()['id']}"),
                               headers=admin.headers)
    assert gone.status_code == 204
    assert (await client.get(submissions_url(province, f"/{doomed.json()['id']}"),
                             headers=admin.headers)).status_code == 404


async def test_personal_data_is_masked_by_permission(client: httpx.AsyncClient,
                                                     platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    made = await submit(client, province, admin, sample(FORM))
    url = submissions_url(province, f"/{made.json()['id']}")
    seen: dict[str, dict[str, Any]] = {}
    for role in ("reviewer", "officer", "api_client"):
        who = await platform.client_for(province, [role], by=admin)
        response = await client.get(url, headers=who.headers)
        assert response.status_code == 200, response.text
        seen[role] = response.json()
    assert seen["reviewer"]["masked_fields"] == []
    assert seen["reviewer"]["data"] == sample(FORM)
    assert seen["officer"]["masked_fields"] == ["chu_ho_dan_toc"]  # sensitive
    assert seen["officer"]["data"]["chu_ho_dan_toc"] == "***"
    assert seen["officer"]["data"]["chu_ho_ho_ten"] == "Đỗ Văn Hải"  # basic
    assert "chu_ho_so_dinh_danh" in seen["api_client"]["masked_fields"]
    assert "001079015382" not in str(seen["api_client"])
    assert seen["api_client"]["data"]["ten_ho_kinh_doanh"] == "HỘ KINH DOANH PHỞ BẮC HẢI"

    listed = await client.get(submissions_url(province),
                              headers=(await platform.client_for(province, ["api_client"],
                                                                 by=admin)).headers)
    assert all(item["data"].get("chu_ho_so_dinh_danh") == "***"
               for item in listed.json()["items"])


async def test_personal_data_stays_out_of_logs_and_audit(
        client: httpx.AsyncClient, platform: Platform, backend: Backend,
        caplog: pytest.LogCaptureFixture) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    secret_id = "079203999111"
    data = {**sample(FORM), "chu_ho_so_dinh_danh": secret_id, "chu_ho_dan_toc": "Ê Đê"}
    with caplog.at_level(logging.DEBUG):
        assert (await submit(client, province, admin, data)).status_code == 201
        bad = {**data, "chu_ho_ngay_sinh": secret_id}
        assert (await submit(client, province, admin, bad)).status_code == 422
        await client.get(submissions_url(province), params={"q": "pho"}, headers=admin.headers)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert secret_id not in logged and "Ê Đê" not in logged
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            audit = (await conn.execute(text("SELECT * FROM audit_records"))).all()
            search = (await conn.execute(text("SELECT search_text FROM submissions"))).all()
    finally:
        await engine.dispose()
    assert secret_id not in str(audit)
    assert not any(secret_id in row[0] or "ede" in row[0].split() for row in search)


async def test_province_lists_filters_and_searches_its_communes(
        client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    commune_admin = await platform.client_for(commune, ["tenant_admin"], by=admin)
    officer = await platform.client_for(province, ["officer"], by=admin)
    await published(client, province, admin, catalogue(FORM))
    bakery = json.loads(sorted((FORMS / FORM / "valid").glob("*.json"))[1].read_text())
    here = await submit(client, province, admin, sample(FORM))
    there = await submit(client, commune, commune_admin, bakery)
    assert here.status_code == there.status_code == 201, there.text

    everything = await client.get(submissions_url(province), headers=officer.headers)
    assert {i["id"] for i in everything.json()["items"]} == {here.json()["id"],
                                                             there.json()["id"]}
    only_here = await client.get(submissions_url(province), params={"subtree": "false"},
                                 headers=officer.headers)
    assert [i["id"] for i in only_here.json()["items"]] == [here.json()["id"]]
    below = await client.get(submissions_url(commune), headers=commune_admin.headers)
    assert [i["id"] for i in below.json()["items"]] == [there.json()["id"]]

    # Search is accent-insensitive and covers fields that are not personal data.
    found = await client.get(submissions_url(province), params={"q": "pho bac hai"},
                             headers=officer.headers)
    assert [i["id"] for i in found.json()["items"]] == [here.json()["id"]]
    by_name = await client.get(submissions_url(province), params={"q": "Đỗ Văn Hải"},
                               headers=officer.headers)
    assert by_name.json()["items"] == [], "personal data is not searchable"

    filtered = await client.get(submissions_url(province),
                                params={"form": FORM, "data.so_lao_dong": "4",
                                        "data.loai_chu_the": "ca_nhan"},
                                headers=officer.headers)
    assert [i["id"] for i in filtered.json()["items"]] == [here.json()["id"]]
    personal = await client.get(submissions_url(province),
                                params={"form": FORM, "data.chu_ho_so_dinh_danh": "001079015382"},
                                headers=officer.headers)
    assert personal.status_code == 403 and personal.json()["code"] == "personal-data-filter"
    unknown = await client.get(submissions_url(province),
                               params={"form": FORM, "data.khong_co": "1"},
                               headers=officer.headers)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["parameter"] == (
        "data.khong_co")

    first = await client.get(submissions_url(province), params={"limit": "1"},
                             headers=officer.headers)
    second = await client.get(submissions_url(province),
                              params={"limit": "1", "cursor": first.json()["next_cursor"]},
                              headers=officer.headers)
    assert [first.json()["items"][0]["id"], second.json()["items"][0]["id"]] == [
        there.json()["id"], here.json()["id"]]
    assert second.json()["next_cursor"] is None


@pytest.mark.parametrize("depth", [33, 10_000])
async def test_deeply_nested_data_is_refused(depth: int, client: httpx.AsyncClient,
                                             platform: Platform, backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    nested = "[" * depth + "]" * depth
    raw = f'{{"form": "{FORM}", "data": {{"x": {nested}}}}}'.encode()
    before = await count(backend, "submissions")
    response = await client.post(submissions_url(province), content=raw,
                                 headers={**admin.headers, "Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(backend, "submissions") == before


async def test_a_50_mb_body_is_refused_before_it_is_read(client: httpx.AsyncClient,
                                                          platform: Platform,
                                                          backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    filler = "x" * (50 * 1024 * 1024)
    raw = f'{{"form": "{FORM}", "data": {{"ten_ho_kinh_doanh": "{filler}"}}}}'.encode()
    before = await count(backend, "submissions")
    response = await client.post(submissions_url(province), content=raw,
                                 headers={**admin.headers, "Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body-too-large"
    assert await count(backend, "submissions") == before


@pytest.mark.parametrize("media_type", ["text/plain", "application/xml",
                                        "application/x-www-form-urlencoded", None])
async def test_a_wrong_content_type_is_refused(media_type: str | None, client: httpx.AsyncClient,
                                               platform: Platform, backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    body = json.dumps({"form": FORM, "data": sample(FORM)}).encode()
    headers = {**admin.headers, **({"Content-Type": media_type} if media_type else {})}
    before = await count(backend, "submissions")
    response = await client.post(submissions_url(province), content=body, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported-media-type"
    assert await count(backend, "submissions") == before
