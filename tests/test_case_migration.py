"""Running cases keep their version; an administrator moves them to a new one with an
explicit state mapping, after a dry run that lists what cannot move and why."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx

from tests.conftest import Backend
from tests.platform import Platform
from tests.test_cases import Office, act, office, read, submit
from tests.test_forms import count
from tests.test_workflows import catalogue, url

OLD, NEW = "xem_xet_ho_so", "tham_dinh_ho_so"


def renamed(definition: dict[str, Any]) -> dict[str, Any]:
    """Version 2: the review state is renamed."""
    text = json.dumps(definition).replace(f'"{OLD}"', f'"{NEW}"')
    changed: dict[str, Any] = json.loads(text)
    return changed


async def publish_v2(client: httpx.AsyncClient, where: Office) -> None:
    v2 = renamed(copy.deepcopy(catalogue("ho-kinh-doanh")))
    drafted = await client.post(url(where.province, "/ho-kinh-doanh/versions"), json=v2,
                                headers=where.admin.headers)
    assert drafted.status_code == 201, drafted.text
    done = await client.post(url(where.province, "/ho-kinh-doanh/versions/2/publish"),
                             headers=where.admin.headers)
    assert done.status_code == 200, done.text


async def migrate(client: httpx.AsyncClient, where: Office, **body: Any) -> httpx.Response:
    return await client.post(url(where.province, "/ho-kinh-doanh/migrate"), json=body,
                             headers=where.admin.headers)


async def test_renaming_a_state_never_breaks_running_cases(client: httpx.AsyncClient,
                                                            platform: Platform) -> None:
    where = await office(platform, client)
    running = (await submit(client, where))["case"]
    await act(client, where, running, "tiep_nhan_ho_so", where.officer)
    await publish_v2(client, where)
    assert (await read(client, where, running, where.officer)).json()["workflow"]["version"] == 1
    moved = await act(client, where, running, "de_xuat_cap", where.officer,
                      {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})
    assert moved.status_code == 200, moved.text
    fresh = (await submit(client, where))["case"]
    await act(client, where, fresh, "tiep_nhan_ho_so", where.officer)
    assert (await read(client, where, fresh, where.officer)).json()["state"]["name"] == NEW


async def test_dry_run_then_migrate_with_a_mapping(client: httpx.AsyncClient,
                                                   platform: Platform,
                                                   backend: Backend) -> None:
    where = await office(platform, client)
    at_start = (await submit(client, where))["case"]
    in_review = (await submit(client, where))["case"]
    await act(client, where, in_review, "tiep_nhan_ho_so", where.officer)
    closed = (await submit(client, where))["case"]
    await act(client, where, closed, "rut_ho_so", where.portal)
    await publish_v2(client, where)

    history_before = await count(backend, "case_history")
    dry = await migrate(client, where, to_version=2)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] is True and body["remaining"] == 0
    assert [(c["case"], c["to_state"]) for c in body["moved"]] == [(at_start, "tiep_nhan")]
    assert [(c["case"], c["state"], c["code"]) for c in body["cannot_move"]] == [
        (in_review, OLD, "state-not-mapped")]
    assert body["cannot_move"][0]["tenant"] == where.commune
    assert await count(backend, "case_history") == history_before
    assert (await read(client, where, at_start, where.officer)).json()["workflow"][
        "version"] == 1

    done = await migrate(client, where, to_version=2, states={OLD: NEW}, dry_run=False)
    assert done.status_code == 200, done.text
    assert sorted(c["case"] for c in done.json()["moved"]) == sorted([at_start, in_review])
    case = (await read(client, where, in_review, where.officer)).json()
    assert (case["workflow"]["version"], case["state"]["name"]) == (2, NEW)
    assert [a["name"] for a in case["actions"]][:1] == ["yeu_cau_bo_sung"]
    history = (await client.get(where.cases(f"/{in_review}/history"),
                                headers=where.officer.headers)).json()
    assert (history[-1]["kind"], history[-1]["from"], history[-1]["to"],
            history[-1]["detail"]) == ("migrate", OLD, NEW,
                                       {"from_version": 1, "to_version": 2})
    closed_case = (await read(client, where, closed, where.officer)).json()
    assert closed_case["workflow"]["version"] == 1
    proceeds = await act(client, where, in_review, "de_xuat_cap", where.officer,
                         {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})
    assert proceeds.status_code == 200, proceeds.text


async def test_bad_migrations_are_refused_whole(client: httpx.AsyncClient,
                                                platform: Platform, backend: Backend) -> None:
    where = await office(platform, client)
    case_id = (await submit(client, where))["case"]
    await publish_v2(client, where)
    before = await count(backend, "case_history")
    unknown = await migrate(client, where, to_version=2, states={"tiep_nhan": "khong_co"},
                            dry_run=False)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["pointer"] == "/states/tiep_nhan"
    ending = await migrate(client, where, to_version=2, states={"tiep_nhan": "da_cap"})
    assert [c["code"] for c in ending.json()["cannot_move"]] == ["maps-to-terminal"]
    draft = await client.post(url(where.province, "/ho-kinh-doanh/versions"),
                              headers=where.admin.headers)
    assert draft.status_code == 201
    unpublished = await migrate(client, where, to_version=3, dry_run=False)
    assert (unpublished.status_code, unpublished.json()["code"]) == (422,
                                                                     "version-not-published")
    bad_body = await migrate(client, where, to_version=2, states={"Bad Name": "x"})
    assert bad_body.status_code == 422
    assert await count(backend, "case_history") == before
    assert (await read(client, where, case_id, where.officer)).json()["workflow"][
        "version"] == 1
    commune_admin = await platform.client_for(where.commune, ["tenant_admin"], by=where.admin)
    inherited = await client.post(url(where.commune, "/ho-kinh-doanh/migrate"),
                                  json={"to_version": 2}, headers=commune_admin.headers)
    assert inherited.status_code == 403
