"""Self-service reports over the API: definitions checked against the form with pointers into
them, aggregates computed by the database over the caller's subtree (and rolled up to the
units below), personal data guarded, CSV and XLSX exports, and proof that a run is one grouped
SQL statement however many submissions there are. Every case runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import event

from tests.conftest import Backend, only_postgresql
from tests.platform import Credentials, Platform
from tests.test_forms import FORMS, catalogue, count, published

FORM = "ho-kinh-doanh"


def reports_url(tenant: str, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant}/reports{suffix}"


SAMPLES = {json.loads(p.read_text())["loai_chu_the"]: json.loads(p.read_text())
           for p in sorted((FORMS / FORM / "valid").glob("*.json"))}


def business(kind: str, capital: int, workers: int) -> dict[str, Any]:
    """A valid submission of the catalogue form: an individual's (ca_nhan) or a household's
    (ho_gia_dinh) business."""
    data: dict[str, Any] = copy.deepcopy(SAMPLES[kind])
    data.update(von_kinh_doanh=capital, so_lao_dong=workers)
    return data


@dataclass
class Made:
    tenant: str
    kind: str
    capital: int
    workers: int
    created_at: datetime


@dataclass
class World:
    province: str
    admin: Credentials
    communes: list[str]
    commune_admins: list[Credentials]
    made: list[Made] = field(default_factory=list)

    def of(self, *tenants: str) -> list[Made]:
        return [m for m in self.made if m.tenant in tenants]


async def _submit(client: httpx.AsyncClient, world: World, tenant: str, kind: str,
                  capital: int, workers: int) -> None:
    response = await client.post(f"/api/v1/tenants/{tenant}/submissions",
                                 headers=world.admin.headers,
                                 json={"form": FORM, "data": business(kind, capital, workers)})
    assert response.status_code == 201, response.text
    created = datetime.fromisoformat(response.json()["created_at"])
    world.made.append(Made(tenant, kind, capital, workers, created))


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, platform: Platform) -> World:
    """A province with two communes. The form is published at the province; its own office
    and both communes have submitted applications (and a commune has a draft whose capital
    is text, which a report must treat as missing, not fail on)."""
    province, admin = await platform.province_with_admin()
    communes = [await platform.tenant(province, "commune", by=admin) for _ in range(2)]
    admins = [await platform.client_for(c, ["tenant_admin"], by=admin) for c in communes]
    await published(client, province, admin, catalogue(FORM))
    world = World(province, admin, communes, admins)
    for tenant, kind, capital, workers in (
            (province, "ca_nhan", 100_000_000, 2),
            (communes[0], "ca_nhan", 300_000_000, 4),
            (communes[0], "ca_nhan", 200_000_000, 3),
            (communes[0], "ho_gia_dinh", 500_000_000, 6),
            (communes[1], "ho_gia_dinh", 800_000_000, 10),
            (communes[1], "ca_nhan", 150_000_000, 1)):
        await _submit(client, world, tenant, kind, capital, workers)
    draft = await client.post(f"/api/v1/tenants/{communes[0]}/submissions",
                              headers=admin.headers,
                              json={"form": FORM, "status": "draft",
                                    "data": {"loai_chu_the": "ca_nhan",
                                             "von_kinh_doanh": "ba trăm triệu"}})
    assert draft.status_code == 201, draft.text
    return world


def definition(key: str = "hkd", **extra: Any) -> dict[str, Any]:
    return {"key": key, "title": {"vi": "Hộ kinh doanh", "en": "Household businesses"},
            "form": FORM, **extra}


ALL = [{"fn": "count"}, {"fn": "sum", "field": "von_kinh_doanh"},
       {"fn": "avg", "field": "von_kinh_doanh"}, {"fn": "min", "field": "von_kinh_doanh"},
       {"fn": "max", "field": "so_lao_dong"}, {"fn": "distinct", "field": "loai_chu_the"}]


def expected(rows: list[Made]) -> list[Any]:
    capital = [m.capital for m in rows]
    return [len(rows), sum(capital), mean(capital), min(capital),
            max(m.workers for m in rows), len({m.kind for m in rows})]


async def preview(client: httpx.AsyncClient, tenant: str, who: Credentials,
                  body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(reports_url(tenant, "/run"), json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_rows(actual: list[list[Any]], wanted: list[list[Any]]) -> None:
    assert len(actual) == len(wanted), (actual, wanted)
    for got, want in zip(actual, wanted, strict=True):
        assert got == pytest.approx(want), (got, want)


async def test_aggregates_are_computed_over_the_subtree(client: httpx.AsyncClient,
                                                        world: World) -> None:
    saved = await client.post(reports_url(world.province), headers=world.admin.headers,
                              json=definition("tong-hop", aggregates=ALL))
    assert saved.status_code == 201, saved.text
    run = await client.post(reports_url(world.province, "/tong-hop/run"),
                            headers=world.admin.headers)
    assert run.status_code == 200, run.text
    result = run.json()
    assert result["columns"] == ["count", "sum(von_kinh_doanh)", "avg(von_kinh_doanh)",
                                 "min(von_kinh_doanh)", "max(so_lao_dong)",
                                 "distinct(loai_chu_the)"]
    assert_rows(result["rows"], [expected(world.made)])
    assert isinstance(result["rows"][0][1], int), "integer sums stay exact integers"
    assert (result["tenant"], result["report"], result["truncated"]) == (
        world.province, "tong-hop", False)
    assert result["generated_at"]


async def test_group_by_a_field_and_the_tenant(client: httpx.AsyncClient,
                                               world: World) -> None:
    result = await preview(client, world.province, world.admin, definition(
        group_by=["$tenant", "loai_chu_the"],
        aggregates=[{"fn": "count"}, {"fn": "sum", "field": "so_lao_dong"}]))
    assert result["columns"] == ["$tenant", "loai_chu_the", "count", "sum(so_lao_dong)"]
    groups: dict[tuple[str, str], list[Made]] = {}
    for made in world.made:
        groups.setdefault((made.tenant, made.kind), []).append(made)
    assert result["rows"] == [[t, k, len(ms), sum(m.workers for m in ms)]
                              for (t, k), ms in sorted(groups.items())]


async def test_group_by_nested_and_boolean_fields(client: httpx.AsyncClient,
                                                  world: World) -> None:
    result = await preview(client, world.province, world.admin, definition(
        group_by=["dia_chi_tru_so.tinh", "cam_ket"], aggregates=[{"fn": "count"}]))
    seats = {kind: SAMPLES[kind]["dia_chi_tru_so"]["tinh"] for kind in SAMPLES}
    assert result["rows"] == [[seat, True, sum(seats[m.kind] == seat for m in world.made)]
                              for seat in sorted(set(seats.values()))]


async def test_a_province_rolls_up_its_communes(client: httpx.AsyncClient,
                                                world: World) -> None:
    body = definition(rollup="children", aggregates=[{"fn": "count"},
                                                     {"fn": "sum", "field": "von_kinh_doanh"}])
    result = await preview(client, world.province, world.admin, body)
    assert result["columns"] == ["$tenant", "count", "sum(von_kinh_doanh)"]
    units = sorted([world.province, *world.communes])
    assert result["rows"] == [[u, len(world.of(u)), sum(m.capital for m in world.of(u))]
                              for u in units]
    assert result["rollup"] == "children"


async def test_a_saved_report_runs_rolled_up_on_request(client: httpx.AsyncClient,
                                                        world: World) -> None:
    await client.post(reports_url(world.province), headers=world.admin.headers,
                      json=definition("theo-loai", group_by=["loai_chu_the"],
                                      aggregates=[{"fn": "count"}]))
    flat = await client.post(reports_url(world.province, "/theo-loai/run"),
                             headers=world.admin.headers)
    rolled = await client.post(reports_url(world.province, "/theo-loai/run"),
                               headers=world.admin.headers, json={"rollup": "children"})
    assert flat.status_code == rolled.status_code == 200, rolled.text
    kinds = sorted({m.kind for m in world.made})
    assert flat.json()["rows"] == [[k, sum(m.kind == k for m in world.made)] for k in kinds]
    assert rolled.json()["columns"] == ["$tenant", "loai_chu_the", "count"]
    assert rolled.json()["rows"] == [
        [u, k, n] for u in sorted([world.province, *world.communes]) for k in kinds
        if (n := sum(m.kind == k for m in world.of(u)))]


async def test_filters(client: httpx.AsyncClient, world: World) -> None:
    cases: list[tuple[list[dict[str, Any]], list[Made]]] = [
        ([{"field": "loai_chu_the", "op": "eq", "value": "ho_gia_dinh"}],
         [m for m in world.made if m.kind == "ho_gia_dinh"]),
        ([{"field": "loai_chu_the", "op": "ne", "value": "ho_gia_dinh"}],
         [m for m in world.made if m.kind != "ho_gia_dinh"]),
        ([{"field": "von_kinh_doanh", "op": "gte", "value": 200_000_000},
          {"field": "so_lao_dong", "op": "lt", "value": 10}],
         [m for m in world.made if m.capital >= 200_000_000 and m.workers < 10]),
        ([{"field": "so_lao_dong", "op": "in", "value": [1, 2, 6]}],
         [m for m in world.made if m.workers in (1, 2, 6)]),
        ([{"field": "thanh_vien_ho_gia_dinh", "op": "exists"}],
         [m for m in world.made if m.kind == "ho_gia_dinh"]),
        ([{"field": "website", "op": "exists", "value": False}],
         [m for m in world.made if m.kind == "ca_nhan"]),
        ([{"field": "von_kinh_doanh", "op": "gt", "value": 250_000_000.5}],
         [m for m in world.made if m.capital > 250_000_000.5]),
        ([{"field": "cam_ket", "op": "eq", "value": True}], world.made),
        ([{"field": "cam_ket", "op": "ne", "value": True}], []),
        ([{"field": "ngay_bat_dau_hoat_dong", "op": "lt", "value": "2025-12-01"}],
         [m for m in world.made if m.kind == "ca_nhan"]),
    ]
    for filters, rows in cases:
        result = await preview(client, world.province, world.admin, definition(
            filters=filters, aggregates=[{"fn": "count"}, {"fn": "sum", "field": "so_lao_dong"}]))
        assert result["rows"] == [[len(rows), sum(m.workers for m in rows) if rows else None]], (
            filters)


async def test_a_commune_sees_only_its_own(client: httpx.AsyncClient, world: World) -> None:
    commune, commune_admin = world.communes[0], world.commune_admins[0]
    body = definition(aggregates=ALL)
    mine = await preview(client, commune, commune_admin, body)
    assert_rows(mine["rows"], [expected(world.of(commune))])
    rolled = await preview(client, commune, commune_admin, {**body, "rollup": "children"})
    assert rolled["rows"][0][:2] == [commune, len(world.of(commune))]
    assert len(rolled["rows"]) == 1
    # The province's saved reports are its own.
    other = await client.post(reports_url(world.province, "/tong-hop/run"),
                              headers=commune_admin.headers)
    assert other.status_code in (403, 404)


async def test_drafts_count_only_when_asked_and_bad_values_count_as_missing(
        client: httpx.AsyncClient, world: World) -> None:
    aggregates = [{"fn": "count"}, {"fn": "count", "field": "von_kinh_doanh"},
                  {"fn": "sum", "field": "von_kinh_doanh"}]
    total = sum(m.capital for m in world.made)
    submitted = await preview(client, world.province, world.admin,
                              definition(aggregates=aggregates))
    assert submitted["rows"] == [[len(world.made), len(world.made), total]]
    drafts = await preview(client, world.province, world.admin,
                           definition(status="draft", aggregates=aggregates))
    assert drafts["rows"] == [[1, 0, None]]
    both = await preview(client, world.province, world.admin, definition(
        status="any", aggregates=aggregates, group_by=["von_kinh_doanh"],
        filters=[{"field": "loai_chu_the", "op": "eq", "value": "ca_nhan"}]))
    capitals = sorted(m.capital for m in world.made if m.kind == "ca_nhan")
    assert both["rows"] == [[c, 1, 1, c] for c in capitals] + [[None, 1, 0, None]]


async def test_month_groups_in_vietnam_time(client: httpx.AsyncClient, world: World) -> None:
    result = await preview(client, world.province, world.admin, definition(
        group_by=["$month"], aggregates=[{"fn": "count"}]))
    months: dict[str, int] = {}
    for made in world.made:
        month = (made.created_at + timedelta(hours=7)).strftime("%Y-%m")
        months[month] = months.get(month, 0) + 1
    assert result["rows"] == [[m, n] for m, n in sorted(months.items())]


async def test_small_groups_are_left_out(client: httpx.AsyncClient, world: World) -> None:
    result = await preview(client, world.province, world.admin, definition(
        group_by=["$tenant"], min_group_size=3, aggregates=[{"fn": "count"}]))
    assert result["rows"] == [[world.communes[0], 3]]
    assert result["min_group_size"] == 3
    truncated = await preview(client, world.province, world.admin, definition(
        group_by=["$tenant"], limit=2, aggregates=[{"fn": "count"}]))
    assert len(truncated["rows"]) == 2 and truncated["truncated"] is True


@pytest.mark.parametrize(("body", "pointer", "keyword"), [
    (definition(group_by=["khong_co"], aggregates=[{"fn": "count"}]), "/group_by/0",
     "unknown-field"),
    (definition(group_by=["dia_chi_tru_so.khong_co"], aggregates=[{"fn": "count"}]),
     "/group_by/0", "unknown-field"),
    (definition(filters=[{"field": "loai_chu_the", "op": "like", "value": "x"}],
                aggregates=[{"fn": "count"}]), "/filters/0/op", "enum"),
    (definition(aggregates=[{"fn": "count"}, {"fn": "sum", "field": "ten_ho_kinh_doanh"}]),
     "/aggregates/1/field", "field-type"),
    (definition(aggregates=[{"fn": "avg"}]), "/aggregates/0", "required"),
    (definition(filters=[{"field": "so_lao_dong", "op": "eq", "value": "bốn"}],
                aggregates=[{"fn": "count"}]), "/filters/0/value", "value-type"),
    (definition(filters=[{"field": "so_lao_dong", "op": "in", "value": [1, "hai"]}],
                aggregates=[{"fn": "count"}]), "/filters/0/value/1", "value-type"),
    (definition(group_by=["nganh_nghe"], aggregates=[{"fn": "count"}]), "/group_by/0",
     "field-type"),
    (definition(aggregates=[]), "/aggregates", "minItems"),
    ({**definition(aggregates=[{"fn": "count"}]), "form": "khong-co"}, "/form",
     "unknown-form"),
])
async def test_bad_definitions_are_refused_with_pointers_and_store_nothing(
        client: httpx.AsyncClient, world: World, backend: Backend, body: dict[str, Any],
        pointer: str, keyword: str) -> None:
    before = (await count(backend, "reports"), await count(backend, "audit_records"))
    for response in (
            await client.post(reports_url(world.province), json=body,
                              headers=world.admin.headers),
            await client.post(reports_url(world.province, "/run"), json=body,
                              headers=world.admin.headers)):
        assert response.status_code == 422, response.text
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["code"] == "invalid-report"
        assert (pointer, keyword) in {(e["pointer"], e["keyword"]) for e in problem["errors"]}
    assert (await count(backend, "reports"), await count(backend, "audit_records")) == before


async def test_saved_reports_crud(client: httpx.AsyncClient, world: World,
                                  backend: Backend) -> None:
    url, headers = reports_url(world.province), world.admin.headers
    body = definition("vong-doi", aggregates=[{"fn": "count"}])
    assert (await client.post(url, json=body, headers=headers)).status_code == 201
    again = await client.post(url, json=body, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "report-exists"
    listed = await client.get(url, headers=headers, params={"limit": 500})
    assert "vong-doi" in [r["key"] for r in listed.json()["items"]]
    assert all(r["definition"] is None for r in listed.json()["items"])
    changed = {**body, "group_by": ["loai_chu_the"]}
    put = await client.put(url + "/vong-doi", json=changed, headers=headers)
    assert put.status_code == 200 and put.json()["definition"]["group_by"] == ["loai_chu_the"]
    renamed = await client.put(url + "/vong-doi", json={**changed, "key": "khac"},
                               headers=headers)
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["pointer"] == "/key"
    read = await client.get(url + "/vong-doi", headers=headers)
    assert read.json()["form"] == FORM and read.json()["created_by"]
    assert (await client.delete(url + "/vong-doi", headers=headers)).status_code == 204
    assert (await client.get(url + "/vong-doi", headers=headers)).status_code == 404
    audit = await client.get(f"/api/v1/tenants/{world.province}/audit",
                             headers=headers, params={"limit": 500})
    actions = [e["action"] for e in audit.json()["items"] if e["resource_id"] == "vong-doi"]
    assert {"report.create", "report.update", "report.delete"} <= set(actions)
    # A commune's report of the same key is its own.
    commune_url = reports_url(world.communes[0])
    assert (await client.post(commune_url, json=body,
                              headers=world.commune_admins[0].headers)).status_code == 201


async def test_personal_data_needs_both_permissions(client: httpx.AsyncClient, world: World,
                                                    platform: Platform) -> None:
    officer = await platform.client_for(world.province, ["officer"], by=world.admin)
    reviewer = await platform.client_for(world.province, ["reviewer"], by=world.admin)
    designer = await platform.client_for(world.province, ["form_designer"], by=world.admin)
    by_sex = definition("theo-gioi-tinh", group_by=["chu_ho_gioi_tinh"],
                        aggregates=[{"fn": "count"}])
    saved = await client.post(reports_url(world.province), json=by_sex,
                              headers=designer.headers)
    assert saved.status_code == 201, "saving names fields; running reads data"
    for who in (officer, designer):
        denied = await client.post(reports_url(world.province, "/theo-gioi-tinh/run"),
                                   headers=who.headers)
        assert denied.status_code == 403, denied.text
        assert denied.json()["code"] == "personal-data-report"
        exported = await client.get(reports_url(world.province, "/theo-gioi-tinh/export"),
                                    headers=who.headers)
        assert exported.status_code == 403
    allowed = await client.post(reports_url(world.province, "/theo-gioi-tinh/run"),
                                headers=reviewer.headers)
    assert allowed.status_code == 200, allowed.text
    assert sum(row[1] for row in allowed.json()["rows"]) == len(world.made)

    for body in (
            definition(aggregates=[{"fn": "distinct", "field": "chu_ho_dan_toc"}]),
            definition(aggregates=[{"fn": "count"}], filters=[
                {"field": "dia_chi_tru_so.tinh", "op": "eq", "value": "01"}])):
        refused = await client.post(reports_url(world.province, "/run"), json=body,
                                    headers=designer.headers)
        assert refused.status_code == 403, refused.text
    # An officer may run reports but not preview unsaved ones.
    preview_denied = await client.post(reports_url(world.province, "/run"),
                                       json=definition(aggregates=[{"fn": "count"}]),
                                       headers=officer.headers)
    assert preview_denied.status_code == 403


async def test_exports(client: httpx.AsyncClient, world: World) -> None:
    body = definition("xuat", group_by=["$tenant", "loai_chu_the"],
                      aggregates=[{"fn": "count"}, {"fn": "avg", "field": "so_lao_dong"}])
    await client.post(reports_url(world.province), json=body, headers=world.admin.headers)
    run = await client.post(reports_url(world.province, "/xuat/run"),
                            headers=world.admin.headers)
    columns, rows = run.json()["columns"], run.json()["rows"]

    exported = await client.get(reports_url(world.province, "/xuat/export"),
                                params={"format": "csv"}, headers=world.admin.headers)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.headers["cache-control"] == "private, no-store"
    lines = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert lines[0] == columns
    assert_rows([[r[0], r[1], int(r[2]), float(r[3])] for r in lines[1:]], rows)

    xlsx = await client.get(reports_url(world.province, "/xuat/export"),
                            params={"format": "xlsx"}, headers=world.admin.headers)
    assert xlsx.status_code == 200, xlsx.text
    assert xlsx.content.startswith(b"PK")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    assert sheet is not None
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0] == columns
    assert_rows(cells[1:], rows)
    bad = await client.get(reports_url(world.province, "/xuat/export"),
                           params={"format": "pdf"}, headers=world.admin.headers)
    assert bad.status_code == 422
    audit = await client.get(f"/api/v1/tenants/{world.province}/audit",
                             headers=world.admin.headers, params={"limit": 500})
    formats = [e["after"]["format"] for e in audit.json()["items"]
               if e["action"] == "report.export" and e["resource_id"] == "xuat"]
    assert sorted(formats) == ["csv", "xlsx"]


async def test_csv_cells_never_become_formulas() -> None:
    from app.reports.exports import csv_chunks
    from app.reports.service import Result

    result = Result(columns=["ten", "count"], rows=[["=HYPERLINK(\"x\")", 1], ["-1+2", 2],
                                                    [None, 3], [True, 4]],
                    generated_at=datetime.now(), tenant="T", report=None, rollup="none",
                    min_group_size=1, truncated=False)
    text = b"".join([chunk async for chunk in csv_chunks(result)]).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[1:] == [
        ["'=HYPERLINK(\"x\")", "1"], ["'-1+2", "2"], ["", "3"], ["true", "4"]]


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_run_is_one_grouped_statement_whatever_the_volume(
        app: Any, client: httpx.AsyncClient, world: World) -> None:
    body = definition("khoi-luong", group_by=["$tenant"], rollup="children",
                      aggregates=[{"fn": "count"}, {"fn": "sum", "field": "von_kinh_doanh"}])
    await client.post(reports_url(world.province), json=body, headers=world.admin.headers)
    url = reports_url(world.province, "/khoi-luong/run")

    async def run() -> tuple[list[str], list[list[Any]]]:
        with statements(app) as seen:
            response = await client.post(url, headers=world.admin.headers)
        assert response.status_code == 200, response.text
        return list(seen), response.json()["rows"]

    before, rows = await run()
    for _ in range(5):
        await _submit(client, world, world.communes[1], "ca_nhan", 1_000_000, 1)
    after, more = await run()
    assert len(after) == len(before), "the number of statements does not grow with the data"
    reading = [s for s in after if "submissions" in s.lower()]
    assert len(reading) == 1, reading
    assert "group by" in reading[0].lower() and "count(" in reading[0].lower()
    total = {row[0]: row[1] for row in more}
    assert total[world.communes[1]] == len(world.of(world.communes[1]))
    assert sum(row[1] for row in more) == sum(row[1] for row in rows) + 5


@only_postgresql()
async def test_every_run_is_planned_for_its_own_tenant(app: Any, client: httpx.AsyncClient,
                                                       world: World) -> None:
    """The report statement has the same text at every tenant; PostgreSQL must not switch a
    pooled connection to one generic plan for all of them after five runs (a commune's plan
    reading the whole country's submissions). Each run's transaction asks for custom plans."""
    body = definition("ke-hoach", group_by=["$tenant"], rollup="children",
                      aggregates=[{"fn": "count"}])
    await client.post(reports_url(world.province), json=body, headers=world.admin.headers)
    for _ in range(7):
        with statements(app) as seen:
            ran = await client.post(reports_url(world.province, "/ke-hoach/run"),
                                    headers=world.admin.headers)
        assert ran.status_code == 200, ran.text
        grouped = next(i for i, s in enumerate(seen) if "GROUP BY" in s)
        assert any("plan_cache_mode = force_custom_plan" in s for s in seen[:grouped])
