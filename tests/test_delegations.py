"""Delegation while absent: a colleague takes the absent official's case work for a period,
recorded as done on their behalf, and nothing beyond it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.platform import Credentials, Platform
from tests.test_cases import act, office, read, submit
from tests.test_workflows import catalogue

DELEGATIONS = "/api/v1/me/delegations"


async def principal_id(client: httpx.AsyncClient, who: Credentials) -> str:
    me: dict[str, Any] = (await client.get("/api/v1/me", headers=who.headers)).json()
    return str(me["id"])


def period(days: int = 7) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(days=days)).isoformat()}


async def test_a_colleague_stands_in_for_an_absent_reviewer(client: httpx.AsyncClient,
                                                            platform: Platform) -> None:
    where = await office(platform, client)
    case_id = (await submit(client, where))["case"]
    await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)
    await act(client, where, case_id, "de_xuat_cap", where.officer,
              {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})
    refused = await act(client, where, case_id, "tra_lai_xem_xet", where.officer,
                        {"comment": "Bổ sung thẩm định"})
    assert refused.status_code == 403

    given = await client.post(DELEGATIONS, headers=where.reviewer.headers,
                              json={"delegate": await principal_id(client, where.officer),
                                    "reason": "Nghỉ phép", **period()})
    assert given.status_code == 201, given.text
    assert given.json()["active"] is True
    received = await client.get(DELEGATIONS, headers=where.officer.headers)
    assert [d["id"] for d in received.json()] == [given.json()["id"]]

    inbox = await client.get("/api/v1/me/tasks", headers=where.officer.headers)
    assert case_id in [t["case"] for t in inbox.json()["items"]]
    moved = await act(client, where, case_id, "tra_lai_xem_xet", where.officer,
                      {"comment": "Bổ sung thẩm định"})
    assert moved.status_code == 200, moved.text
    history = (await client.get(where.cases(f"/{case_id}/history"),
                                headers=where.officer.headers)).json()
    reviewer_id = await principal_id(client, where.reviewer)
    assert history[-1]["detail"] == {"on_behalf_of": [reviewer_id]}
    assert history[-2]["detail"] is None  # the officer's own action, before

    ended = await client.post(f"{DELEGATIONS}/{given.json()['id']}/end",
                              headers=where.reviewer.headers)
    assert ended.status_code == 200 and ended.json()["active"] is False
    await act(client, where, case_id, "de_xuat_cap", where.officer,
              {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})
    again = await act(client, where, case_id, "tra_lai_xem_xet", where.officer,
                      {"comment": "x"})
    assert again.status_code == 403


async def test_the_delegate_takes_over_claimed_cases(client: httpx.AsyncClient,
                                                     platform: Platform) -> None:
    definition = catalogue("ho-kinh-doanh")
    next(s for s in definition["states"] if s["name"] == "tiep_nhan")["assignment"] = "claim"
    where = await office(platform, client, definition)
    case_id = (await submit(client, where))["case"]
    claimed = await client.post(where.cases(f"/{case_id}/claim"), headers=where.officer.headers)
    assert claimed.status_code == 200
    colleague = await platform.client_for(where.commune, ["officer"], by=where.admin)
    assert (await act(client, where, case_id, "tiep_nhan_ho_so", colleague)).status_code == 409
    await client.post(DELEGATIONS, headers=where.officer.headers,
                      json={"delegate": await principal_id(client, colleague), **period()})
    tasks = await client.get("/api/v1/me/tasks", headers=colleague.headers)
    assert [t["case"] for t in tasks.json()["items"]] == [case_id]
    assert (await read(client, where, case_id, colleague)).json()["actions"]
    taken = await act(client, where, case_id, "tiep_nhan_ho_so", colleague)
    assert taken.status_code == 200, taken.text


async def test_bad_delegations_are_refused(client: httpx.AsyncClient,
                                           platform: Platform) -> None:
    where = await office(platform, client)
    me = await principal_id(client, where.officer)
    _other, other_admin = await platform.province_with_admin()
    stranger = await principal_id(client, other_admin)
    now = datetime.now(UTC)
    cases = [
        ({"delegate": me, **period()}, "/delegate"),
        ({"delegate": stranger, **period()}, "/delegate"),
        ({"delegate": await principal_id(client, where.reviewer),
          "starts_at": now.isoformat(), "ends_at": (now - timedelta(days=1)).isoformat()},
         "/ends_at"),
        ({"delegate": await principal_id(client, where.reviewer), **period(400)}, "/ends_at"),
        ({"delegate": await principal_id(client, where.reviewer),
          "starts_at": "2026-12-01T08:00:00", "ends_at": "2026-12-05T08:00:00"}, "/starts_at"),
    ]
    for body, pointer in cases:
        refused = await client.post(DELEGATIONS, headers=where.officer.headers, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert pointer in {e["pointer"] for e in refused.json()["errors"]}, refused.text
    assert (await client.get(DELEGATIONS, headers=where.officer.headers)).json() == []
    portal = await client.post(DELEGATIONS, headers=where.portal.headers,
                               json={"delegate": me, **period()})
    assert (portal.status_code, portal.json()["code"]) == (403, "nothing-to-delegate")
