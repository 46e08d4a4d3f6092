"""Working calendars over the API: a province declares holidays, a commune adds and cancels
some, the nearest declaration of a date wins, PUT replaces, DELETE reverts to inheriting,
and bad bodies are refused with pointers and without writing. Every case runs on SQLite and
PostgreSQL.

The assertions read one year (``YEAR``) that no other test declares, so declarations made on
the shared root tenant elsewhere in the session cannot disturb them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from app.tenancy import repository
from app.tenancy.scope import TenantScope, apply_scope
from app.workflows.calendars import effective_at
from tests.conftest import Backend
from tests.platform import Credentials, Platform
from tests.test_forms import count

YEAR = 2037
NATIONAL: dict[str, Any] = {
    "weekend": [7, 6],
    "holidays": [
        {"date": "2037-09-02", "name": "Quốc khánh"},
        {"date": "2037-01-01", "name": "Tết Dương lịch"},
        {"date": "2037-04-30", "name": "Ngày Giải phóng miền Nam"},
        {"date": "2037-05-01", "name": "Ngày Quốc tế Lao động"},
    ],
    "working_days": [{"date": "2037-05-09", "name": "Làm bù ngày 30/4"}],
}
LOCAL: dict[str, Any] = {
    "holidays": [{"date": "2037-06-15", "name": "Ngày thành lập xã"}],
    # The commune keeps its offices open on 30 April: it cancels the inherited holiday.
    "working_days": [{"date": "2037-04-30", "name": "Trực lễ"}],
}


def calendar_url(tenant: str) -> str:
    return f"/api/v1/tenants/{tenant}/calendar"


async def put(client: httpx.AsyncClient, tenant: str, who: Credentials,
              body: dict[str, Any]) -> dict[str, Any]:
    response = await client.put(calendar_url(tenant), json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def read(client: httpx.AsyncClient, tenant: str, who: Credentials,
               year: int | None = YEAR) -> dict[str, Any]:
    params = {} if year is None else {"year": str(year)}
    response = await client.get(calendar_url(tenant), params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def days(entries: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["date"], e["name"], e["from"]) for e in entries]


async def audit_actions(client: httpx.AsyncClient, tenant: str, who: Credentials) -> list[str]:
    response = await client.get(f"/api/v1/tenants/{tenant}/audit", params={"limit": 500},
                                headers=who.headers)
    assert response.status_code == 200, response.text
    return [e["action"] for e in response.json()["items"] if e["resource_type"] == "calendar"]


async def test_inheritance_local_holidays_and_cancellations(
    client: httpx.AsyncClient, platform: Platform,
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)

    declared = await put(client, province, admin, NATIONAL)
    assert declared["tenant"] == province and declared["updated_at"]
    assert declared["own"] == {
        "weekend": [6, 7],
        "holidays": sorted(NATIONAL["holidays"], key=lambda e: e["date"]),
        "working_days": NATIONAL["working_days"],
    }
    at_province = await read(client, province, admin)
    assert at_province["effective"]["weekend"] == [6, 7]
    assert days(at_province["effective"]["holidays"]) == [
        ("2037-01-01", "Tết Dương lịch", "own"),
        ("2037-04-30", "Ngày Giải phóng miền Nam", "own"),
        ("2037-05-01", "Ngày Quốc tế Lao động", "own"),
        ("2037-09-02", "Quốc khánh", "own"),
    ]
    assert days(at_province["effective"]["working_days"]) == [
        ("2037-05-09", "Làm bù ngày 30/4", "own")]

    inheriting = await read(client, commune, admin)
    assert inheriting["own"] is None and inheriting["updated_at"] is None
    assert [(d, n) for d, n, _ in days(inheriting["effective"]["holidays"])] == [
        (d, n) for d, n, _ in days(at_province["effective"]["holidays"])]
    assert {f for _, _, f in days(inheriting["effective"]["holidays"])} == {"inherited"}

    await put(client, commune, admin, LOCAL)
    local = await read(client, commune, admin)
    assert local["effective"]["weekend"] == [6, 7]
    assert days(local["effective"]["holidays"]) == [
        ("2037-01-01", "Tết Dương lịch", "inherited"),
        ("2037-05-01", "Ngày Quốc tế Lao động", "inherited"),
        ("2037-06-15", "Ngày thành lập xã", "own"),
        ("2037-09-02", "Quốc khánh", "inherited"),
    ]
    assert days(local["effective"]["working_days"]) == [
        ("2037-04-30", "Trực lễ", "own"),
        ("2037-05-09", "Làm bù ngày 30/4", "inherited"),
    ]
    # The province's own calendar is untouched by what the commune declares.
    assert await read(client, province, admin) == at_province

    # The service the SLA clock uses agrees with the API.
    async with platform.app.state.db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("tests"))
        found = await repository.get_by_code(session, commune)
        assert found is not None
        working = await effective_at(session, found)
    assert sorted(working.weekend) == local["effective"]["weekend"]
    assert sorted(d.isoformat() for d in working.holidays if d.year == YEAR) == [
        e["date"] for e in local["effective"]["holidays"]]
    assert sorted(d.isoformat() for d in working.working_days if d.year == YEAR) == [
        e["date"] for e in local["effective"]["working_days"]]
    assert working.is_working_day(date(YEAR, 4, 30))
    assert not working.is_working_day(date(YEAR, 6, 15))
    assert working.is_working_day(date(YEAR, 5, 9))  # a Saturday made a working day

    assert await audit_actions(client, commune, admin) == ["calendar.replace"]
    assert await audit_actions(client, province, admin) == ["calendar.replace"]


async def test_year_filter(client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    body = {"holidays": [*NATIONAL["holidays"], {"date": "2038-01-01", "name": "Tết 2038"}]}
    await put(client, province, admin, body)
    this_year = await read(client, province, admin)
    assert [e["date"][:4] for e in this_year["effective"]["holidays"]] == [str(YEAR)] * 4
    assert len(this_year["own"]["holidays"]) == 5  # "own" is never filtered
    next_year = await read(client, province, admin, year=YEAR + 1)
    assert ("2038-01-01", "Tết 2038", "own") in days(next_year["effective"]["holidays"])
    assert all(e["date"].startswith("2038") for e in next_year["effective"]["holidays"])
    every = await read(client, province, admin, year=None)
    assert {e["date"] for e in every["effective"]["holidays"]} >= {
        e["date"] for e in body["holidays"]}
    bad = await client.get(calendar_url(province), params={"year": "0"}, headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["parameter"] == "year"


async def test_put_replaces_and_delete_reverts(
    client: httpx.AsyncClient, platform: Platform, backend: Backend,
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    await put(client, province, admin, NATIONAL)

    await put(client, commune, admin, {**LOCAL, "weekend": [7]})
    replaced = await put(client, commune, admin,
                         {"holidays": [{"date": "2037-09-03", "name": "Nghỉ thêm Quốc khánh"}]})
    assert replaced["own"] == {
        "weekend": None, "working_days": [],
        "holidays": [{"date": "2037-09-03", "name": "Nghỉ thêm Quốc khánh"}]}
    after = await read(client, commune, admin)
    assert after["effective"]["weekend"] == [6, 7]  # the Sunday-only weekend is gone
    assert ("2037-04-30", "Ngày Giải phóng miền Nam", "inherited") in days(
        after["effective"]["holidays"])  # the cancellation is gone
    assert "2037-06-15" not in {e["date"] for e in after["effective"]["holidays"]}
    assert ("2037-09-03", "Nghỉ thêm Quốc khánh", "own") in days(after["effective"]["holidays"])

    rows = await count(backend, "tenant_calendars")
    deleted = await client.delete(calendar_url(commune), headers=admin.headers)
    assert deleted.status_code == 204, deleted.text
    assert await count(backend, "tenant_calendars") == rows - 1
    reverted = await read(client, commune, admin)
    at_province = await read(client, province, admin)
    assert reverted["own"] is None and reverted["updated_at"] is None
    for kind in ("holidays", "working_days"):
        assert [(d, n, "inherited") for d, n, _ in days(at_province["effective"][kind])] == \
            days(reverted["effective"][kind])

    again = await client.delete(calendar_url(commune), headers=admin.headers)
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "calendar-not-found"
    assert await audit_actions(client, commune, admin) == [
        "calendar.replace", "calendar.replace", "calendar.delete"]


def _holiday(day: str, name: str = "Nghỉ") -> dict[str, str]:
    return {"date": day, "name": name}


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("impossible date", {"holidays": [_holiday("2037-02-30")]}, "/holidays/0/date"),
    ("not ISO", {"working_days": [_holiday("2037-05-09"), _holiday("09/05/2037")]},
     "/working_days/1/date"),
    ("a timestamp", {"holidays": [_holiday("2037-05-09T00:00:00")]}, "/holidays/0/date"),
    ("a number", {"holidays": [{"date": 20370509, "name": "x"}]}, "/holidays/0/date"),
    ("weekday 8", {"weekend": [6, 8]}, "/weekend/1"),
    ("weekday 0", {"weekend": [0]}, "/weekend/0"),
    ("weekday as text", {"weekend": ["6"]}, "/weekend/0"),
    ("all seven days", {"weekend": [1, 2, 3, 4, 5, 6, 7]}, "/weekend"),
    ("a weekday twice", {"weekend": [6, 6]}, "/weekend"),
    ("duplicate date", {"holidays": [_holiday("2037-01-01"), _holiday("2037-09-02"),
                                     _holiday("2037-01-01", "again")]}, "/holidays/2/date"),
    ("holiday and working day", {"holidays": [_holiday("2037-04-30")],
                                 "working_days": [_holiday("2037-05-09"),
                                                  _holiday("2037-04-30")]},
     "/working_days/1/date"),
    ("unknown key", {"holidays": [], "weekends": [6, 7]}, "/weekends"),
    ("unknown key in an entry", {"holidays": [{**_holiday("2037-01-01"), "kind": "x"}]},
     "/holidays/0/kind"),
    ("empty name", {"holidays": [_holiday("2037-01-01", "  ")]}, "/holidays/0/name"),
    ("long name", {"holidays": [_holiday("2037-01-01", "x" * 201)]}, "/holidays/0/name"),
    ("control character", {"holidays": [_holiday("2037-01-01", "a\x00b")]},
     "/holidays/0/name"),
    ("too many", {"holidays": [_holiday((date(YEAR, 1, 1) + timedelta(days=i)).isoformat())
                               for i in range(401)]}, "/holidays"),
    ("not an object", [NATIONAL], ""),
]


async def test_bad_bodies_are_refused_without_writing(
    client: httpx.AsyncClient, platform: Platform, backend: Backend,
) -> None:
    province, admin = await platform.province_with_admin()
    kept = await put(client, province, admin, NATIONAL)
    before = (await count(backend, "tenant_calendars"), await count(backend, "audit_records"))
    for label, body, pointer in BAD_BODIES:
        response = await client.put(calendar_url(province), json=body, headers=admin.headers)
        assert response.status_code == 422, (label, response.text)
        assert response.headers["content-type"] == "application/problem+json", label
        assert [e["pointer"] for e in response.json()["errors"]] == [pointer], (
            label, response.json())
    assert (await count(backend, "tenant_calendars"),
            await count(backend, "audit_records")) == before
    unchanged = await read(client, province, admin, year=None)
    assert (unchanged["own"], unchanged["updated_at"]) == (kept["own"], kept["updated_at"])

    # The largest valid lists are accepted.
    most = {"holidays": [_holiday((date(YEAR, 1, 1) + timedelta(days=i)).isoformat())
                         for i in range(400)]}
    assert len((await put(client, province, admin, most))["own"]["holidays"]) == 400


async def test_an_officer_reads_but_cannot_write(
    client: httpx.AsyncClient, platform: Platform, backend: Backend,
) -> None:
    province, admin = await platform.province_with_admin()
    await put(client, province, admin, NATIONAL)
    officer = await platform.client_for(province, ["officer"], by=admin)
    assert (await read(client, province, officer))["own"] is not None
    before = (await count(backend, "tenant_calendars"), await count(backend, "audit_records"))
    for method in ("PUT", "DELETE"):
        denied = await client.request(method, calendar_url(province), headers=officer.headers,
                                      json=LOCAL if method == "PUT" else None)
        assert denied.status_code == 403, (method, denied.text)
        assert denied.headers["content-type"] == "application/problem+json"
    assert (await count(backend, "tenant_calendars"),
            await count(backend, "audit_records")) == before
