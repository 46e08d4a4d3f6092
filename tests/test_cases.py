"""Cases over the API: a submission opens a case of the workflow its form binds to; officials
take actions with If-Match; history is append-only; the inbox lists what each may do now;
jurisdiction routes a step to the province. Every case runs on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Backend
from tests.platform import Credentials, Platform
from tests.test_forms import catalogue as form_catalogue
from tests.test_forms import count, sample
from tests.test_forms import published as published_form
from tests.test_workflows import catalogue, url


@dataclass
class Office:
    province: str
    admin: Credentials
    commune: str
    portal: Credentials
    officer: Credentials
    reviewer: Credentials

    def cases(self, suffix: str = "") -> str:
        return f"/api/v1/tenants/{self.commune}/cases{suffix}"


async def office(platform: Platform, client: httpx.AsyncClient,
                 definition: dict[str, Any] | None = None) -> Office:
    """A province that publishes the household-business form and workflow, and a commune
    with a portal client, an officer and a reviewer."""
    province, admin = await platform.province_with_admin()
    await published_form(client, province, admin, form_catalogue("ho-kinh-doanh"))
    workflow = definition or catalogue("ho-kinh-doanh")
    created = await client.post(url(province), json=workflow, headers=admin.headers)
    assert created.status_code == 201, created.text
    done = await client.post(url(province, f"/{workflow['key']}/versions/1/publish"),
                             headers=admin.headers)
    assert done.status_code == 200, done.text
    commune = await platform.tenant(province, "commune", by=admin)
    return Office(province, admin, commune,
                  await platform.client_for(commune, ["api_client"], by=admin),
                  await platform.client_for(commune, ["officer"], by=admin),
                  await platform.client_for(commune, ["reviewer"], by=admin))


async def submit(client: httpx.AsyncClient, where: Office) -> dict[str, Any]:
    response = await client.post(f"/api/v1/tenants/{where.commune}/submissions",
                                 headers=where.portal.headers,
                                 json={"form": "ho-kinh-doanh", "data": sample("ho-kinh-doanh")})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def read(client: httpx.AsyncClient, where: Office, case_id: str,
               who: Credentials) -> httpx.Response:
    return await client.get(where.cases(f"/{case_id}"), headers=who.headers)


async def act(client: httpx.AsyncClient, where: Office, case_id: str, action: str,
              who: Credentials, body: dict[str, Any] | None = None,
              etag: str | None = None) -> httpx.Response:
    if etag is None:
        etag = (await read(client, where, case_id, who)).headers["ETag"]
    return await client.post(where.cases(f"/{case_id}/actions/{action}"), json=body or {},
                             headers={**who.headers, "If-Match": etag})


async def test_a_submission_opens_a_case_that_runs_to_its_end(
        client: httpx.AsyncClient, platform: Platform) -> None:
    where = await office(platform, client)
    submission = await submit(client, where)
    case_id = submission["case"]
    assert case_id, submission

    opened = await read(client, where, case_id, where.officer)
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert (body["state"]["name"], body["status"], body["workflow"]["version"]) == (
        "tiep_nhan", "open", 1)
    assert opened.headers["ETag"] == body["etag"]
    assert [a["name"] for a in body["actions"]] == ["tiep_nhan_ho_so", "yeu_cau_bo_sung"]
    assert body["sla"]["case"]["status"] == "on_time" and body["sla"]["case"]["due_at"]

    moved = await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)
    assert moved.status_code == 200, moved.text
    assert moved.json()["state"]["name"] == "xem_xet_ho_so"
    assert moved.headers["ETag"] != opened.headers["ETag"]
    proposed = await act(client, where, case_id, "de_xuat_cap", where.officer,
                         {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})
    assert proposed.status_code == 200, proposed.text
    unsigned = await act(client, where, case_id, "cap_giay_chung_nhan", where.reviewer,
                         {"fields": {"so_giay_chung_nhan": "01A8012345"}})
    # A step that must be signed cannot be taken where no signing provider is configured.
    assert (unsigned.status_code, unsigned.json()["code"]) == (409, "signing-not-configured")
    back = await act(client, where, case_id, "tra_lai_xem_xet", where.reviewer,
                     {"comment": "Kiểm tra lại ngành nghề"})
    assert back.json()["state"]["name"] == "xem_xet_ho_so"
    refused = await act(client, where, case_id, "tu_choi_dang_ky", where.officer, {})
    assert (refused.status_code, refused.json()["code"]) == (422, "comment-required")
    closed = await act(client, where, case_id, "tu_choi_dang_ky", where.officer,
                       {"comment": "Ngành nghề cấm kinh doanh"})
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["outcome"]) == ("closed", "rejected")
    assert closed.json()["actions"] == [] and closed.json()["sla"]["status"] is None

    history = await client.get(where.cases(f"/{case_id}/history"), headers=where.officer.headers)
    assert [(h["kind"], h["action"], h["from"], h["to"]) for h in history.json()] == [
        ("opened", None, None, "tiep_nhan"),
        ("action", "tiep_nhan_ho_so", "tiep_nhan", "xem_xet_ho_so"),
        ("action", "de_xuat_cap", "xem_xet_ho_so", "trinh_ky"),
        ("action", "tra_lai_xem_xet", "trinh_ky", "xem_xet_ho_so"),
        ("action", "tu_choi_dang_ky", "xem_xet_ho_so", "tu_choi")]
    assert history.json()[2]["changes"] == {"ten_khong_trung": True,
                                            "nganh_nghe_khong_cam": True}
    assert history.json()[4]["comment"] == "Ngành nghề cấm kinh doanh"


async def test_if_match_is_required_and_a_stale_one_is_refused(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    where = await office(platform, client)
    case_id = (await submit(client, where))["case"]
    first = (await read(client, where, case_id, where.officer)).headers["ETag"]
    missing = await client.post(where.cases(f"/{case_id}/actions/tiep_nhan_ho_so"), json={},
                                headers=where.officer.headers)
    assert (missing.status_code, missing.json()["code"]) == (428, "precondition-required")
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await act(client, where, case_id, "tiep_nhan_ho_so", where.officer,
                      etag=first)).status_code == 200
    history_rows = await count(backend, "case_history")
    stale = await act(client, where, case_id, "yeu_cau_bo_sung", where.officer,
                      {"fields": {"noi_dung_can_bo_sung": "Bản sao CCCD"}}, etag=first)
    assert (stale.status_code, stale.json()["code"]) == (412, "case-changed")
    assert await count(backend, "case_history") == history_rows


async def test_the_applicant_acts_on_its_own_case_only(client: httpx.AsyncClient,
                                                       platform: Platform) -> None:
    where = await office(platform, client)
    case_id = (await submit(client, where))["case"]
    asked = await act(client, where, case_id, "yeu_cau_bo_sung", where.officer,
                      {"fields": {"noi_dung_can_bo_sung": "Bản sao giấy tờ"}})
    assert asked.json()["state"]["name"] == "cho_bo_sung"
    assert asked.json()["sla"]["case"]["status"] == "paused"
    other_portal = await platform.client_for(where.commune, ["api_client"], by=where.admin)
    etag = asked.headers["ETag"]
    stranger = await act(client, where, case_id, "nop_bo_sung", other_portal, {}, etag=etag)
    assert stranger.status_code in (403, 404)
    resubmitted = await act(client, where, case_id, "nop_bo_sung", where.portal,
                            {"fields": {"giai_trinh_bo_sung": "Đã bổ sung"}}, etag=etag)
    assert resubmitted.status_code == 200, resubmitted.text
    body = resubmitted.json()
    assert body["state"]["name"] == "xem_xet_ho_so"
    assert body["sla"]["case"]["status"] == "on_time"
    assert body["data"]["giai_trinh_bo_sung"] == "Đã bổ sung"


async def test_personal_data_is_masked_for_roles_without_it(client: httpx.AsyncClient,
                                                            platform: Platform) -> None:
    where = await office(platform, client)
    case_id = (await submit(client, where))["case"]
    seen = await read(client, where, case_id, where.portal)
    assert seen.status_code == 200
    assert seen.json()["masked_fields"]
    assert all(seen.json()["data"][f] == "***" for f in seen.json()["masked_fields"])
    full = await read(client, where, case_id, where.reviewer)
    assert full.json()["masked_fields"] == []


async def test_history_is_append_only_in_the_database(client: httpx.AsyncClient,
                                                      platform: Platform,
                                                      backend: Backend) -> None:
    where = await office(platform, client)
    await submit(client, where)
    engine = backend.superuser_engine()
    try:
        for statement in ("UPDATE case_history SET comment = 'x'", "DELETE FROM case_history"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_inbox_lists_what_each_may_do_now(client: httpx.AsyncClient,
                                                platform: Platform) -> None:
    where = await office(platform, client)
    first = (await submit(client, where))["case"]
    second = (await submit(client, where))["case"]
    await act(client, where, second, "tiep_nhan_ho_so", where.officer)
    await act(client, where, second, "de_xuat_cap", where.officer,
              {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})

    officer = await client.get("/api/v1/me/tasks", headers=where.officer.headers)
    assert officer.status_code == 200, officer.text
    assert [(t["case"], t["actions"]) for t in officer.json()["items"]] == [
        (first, ["tiep_nhan_ho_so", "yeu_cau_bo_sung"])]
    reviewer = await client.get("/api/v1/me/tasks", headers=where.reviewer.headers)
    assert [(t["case"], t["state"]["name"]) for t in reviewer.json()["items"]] == [
        (second, "trinh_ky")]
    assert reviewer.json()["items"][0]["sla"] == "on_time"
    overdue = await client.get("/api/v1/me/tasks", params={"sla": "overdue"},
                               headers=where.reviewer.headers)
    assert overdue.json()["items"] == []
    province_officer = await platform.client_for(where.province, ["officer"], by=where.admin)
    above = await client.get("/api/v1/me/tasks", headers=province_officer.headers)
    assert [t["case"] for t in above.json()["items"]] == [first]
    portal = await client.get("/api/v1/me/tasks", headers=where.portal.headers)
    assert portal.json()["items"] == []


async def test_a_step_routed_to_the_province(client: httpx.AsyncClient,
                                             platform: Platform) -> None:
    """The province's approver acts on the commune's case, sees it in its inbox, and reads it,
    without any right to the commune's other cases."""
    definition = catalogue("ho-kinh-doanh")
    signing = next(a for a in definition["actions"] if a["name"] == "cap_giay_chung_nhan")
    signing["at"] = "parent"
    del signing["signature"]
    where = await office(platform, client, definition)
    await platform.role_for(where.province, "phe_duyet_tinh", ["cases:act"], by=where.admin)
    approver = await platform.client_for(where.province, ["phe_duyet_tinh"], by=where.admin)
    signing["roles"] = ["phe_duyet_tinh"]
    revised = await client.post(url(where.province, "/ho-kinh-doanh/versions"), json=definition,
                                headers=where.admin.headers)
    assert revised.status_code == 201, revised.text
    published = await client.post(url(where.province, "/ho-kinh-doanh/versions/2/publish"),
                                  headers=where.admin.headers)
    assert published.status_code == 200, published.text

    routed = (await submit(client, where))["case"]
    unrouted = (await submit(client, where))["case"]
    assert (await read(client, where, routed, where.officer)).json()["workflow"]["version"] == 2
    await act(client, where, routed, "tiep_nhan_ho_so", where.officer)
    await act(client, where, routed, "de_xuat_cap", where.officer,
              {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})
    commune_reviewer = await act(client, where, routed, "cap_giay_chung_nhan", where.reviewer,
                                 {"fields": {"so_giay_chung_nhan": "01A8000001"}})
    assert (commune_reviewer.status_code, commune_reviewer.json()["code"]) == (403,
                                                                               "not-allowed")
    tasks = await client.get("/api/v1/me/tasks", headers=approver.headers)
    assert [t["case"] for t in tasks.json()["items"]] == [routed]
    assert tasks.json()["items"][0]["tenant"] == where.commune
    assert (await read(client, where, routed, approver)).status_code == 200
    assert (await read(client, where, unrouted, approver)).status_code == 404
    listing = await client.get(where.cases(), headers=approver.headers)
    assert listing.status_code == 403
    done = await act(client, where, routed, "cap_giay_chung_nhan", approver,
                     {"fields": {"so_giay_chung_nhan": "01A8000001"}})
    assert done.status_code == 200, done.text
    assert done.json()["outcome"] == "approved"


async def test_claim_release_and_assign(client: httpx.AsyncClient,
                                        platform: Platform) -> None:
    definition = catalogue("ho-kinh-doanh")
    next(s for s in definition["states"] if s["name"] == "tiep_nhan")["assignment"] = "claim"
    where = await office(platform, client, definition)
    case_id = (await submit(client, where))["case"]
    colleague = await platform.client_for(where.commune, ["officer"], by=where.admin)
    unclaimed = await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)
    assert (unclaimed.status_code, unclaimed.json()["code"]) == (409, "not-claimed")
    claimed = await client.post(where.cases(f"/{case_id}/claim"), headers=where.officer.headers)
    assert claimed.status_code == 200, claimed.text
    assert [a["name"] for a in claimed.json()["actions"]] == ["tiep_nhan_ho_so",
                                                              "yeu_cau_bo_sung"]
    taken = await client.post(where.cases(f"/{case_id}/claim"), headers=colleague.headers)
    assert (taken.status_code, taken.json()["code"]) == (409, "already-claimed")
    mine = await client.get("/api/v1/me/tasks", headers=colleague.headers)
    assert mine.json()["items"] == []
    not_theirs = await client.post(where.cases(f"/{case_id}/release"),
                                   headers=colleague.headers)
    assert not_theirs.status_code == 403
    released = await client.post(where.cases(f"/{case_id}/release"),
                                 headers=where.officer.headers)
    assert released.json()["assignee"] is None
    colleague_id = (await client.get("/api/v1/me", headers=colleague.headers)).json()["id"]
    assigned = await client.post(where.cases(f"/{case_id}/assign"), headers=where.admin.headers,
                                 json={"assignee": colleague_id})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee"] == colleague_id
    assert (await act(client, where, case_id, "tiep_nhan_ho_so", colleague)).status_code == 200
    kinds = [h["kind"] for h in (await client.get(where.cases(f"/{case_id}/history"),
                                                  headers=where.officer.headers)).json()]
    assert kinds == ["opened", "claim", "release", "assign", "action"]
