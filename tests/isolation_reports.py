"""Cross-tenant cases for saved reports.

Each victim tenant holds two reports over its form ``vf-pub`` (see :func:`victim_reports`,
which runs after :func:`tests.isolation_forms.victim_forms` has made the form):
``vr-main``, which the cases read, replace, run and export, and ``vr-doomed``, which the
owner's control run deletes last."""

from __future__ import annotations

from typing import Any

import httpx

from tests.isolation import Attack, World, isolation_case
from tests.platform import Credentials, new_code

REPORTS = "/api/v1/tenants/{tenant}/reports"


def definition(key: str) -> dict[str, Any]:
    return {"key": key, "title": {"vi": "Đơn theo loại", "en": "Petitions by kind"},
            "form": "vf-pub", "group_by": ["loai_don"],
            "aggregates": [{"fn": "count"}]}


async def victim_reports(http: httpx.AsyncClient, tenant: str,
                         admin: Credentials) -> dict[str, str]:
    made = {}
    for name, key in (("report_key", "vr-main"), ("doomed_report_key", "vr-doomed")):
        response = await http.post(REPORTS.format(tenant=tenant), json=definition(key),
                                   headers=admin.headers)
        assert response.status_code == 201, response.text
        made[name] = key
    return made


def _reports(victim: str, suffix: str = "") -> str:
    return REPORTS.format(tenant=victim) + suffix


def _report(world: World, victim: str, which: str = "report_key", suffix: str = "") -> str:
    return _reports(victim, "/" + world.victims[victim].forms[which] + suffix)


@isolation_case("POST", REPORTS)
def create_report(world: World, victim: str) -> Attack:
    return Attack("POST", _reports(victim), json=definition(new_code("r").lower()))


@isolation_case("GET", REPORTS)
def list_reports(world: World, victim: str) -> Attack:
    return Attack("GET", _reports(victim))


@isolation_case("POST", REPORTS + "/run")
def preview_report(world: World, victim: str) -> Attack:
    return Attack("POST", _reports(victim, "/run"), json=definition("vr-preview"))


@isolation_case("GET", REPORTS + "/{key}")
def read_report(world: World, victim: str) -> Attack:
    return Attack("GET", _report(world, victim))


@isolation_case("PUT", REPORTS + "/{key}")
def replace_report(world: World, victim: str) -> Attack:
    key = world.victims[victim].forms["report_key"]
    return Attack("PUT", _report(world, victim), json={**definition(key), "group_by": []})


@isolation_case("DELETE", REPORTS + "/{key}")
def delete_report(world: World, victim: str) -> Attack:
    return Attack("DELETE", _report(world, victim, "doomed_report_key"))


@isolation_case("POST", REPORTS + "/{key}/run")
def run_report(world: World, victim: str) -> Attack:
    return Attack("POST", _report(world, victim, suffix="/run"), json={"rollup": "children"})


@isolation_case("GET", REPORTS + "/{key}/export")
def export_report(world: World, victim: str) -> Attack:
    return Attack("GET", _report(world, victim, suffix="/export"), params={"format": "xlsx"})
