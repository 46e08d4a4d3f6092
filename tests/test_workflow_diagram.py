"""The workflow diagram: a (possibly unfinished) definition drawn as SVG by the service, for
the designer. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
from defusedxml import ElementTree

from app.workflows import diagram
from tests.platform import Platform

ROOT = Path(__file__).resolve().parents[1] / "workflows"
SVG = "{http://www.w3.org/2000/svg}"


def catalogue(key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / key / "workflow.json").read_text())
    return document


def url(tenant: str) -> str:
    return f"/api/v1/tenants/{tenant}/workflows/diagram"


def texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return ["".join(e.itertext()) for e in root.iter(f"{SVG}text")]


async def test_a_definition_is_drawn_as_svg(client: httpx.AsyncClient,
                                            platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue("ho-kinh-doanh")
    definition["states"][1]["sla"] = {"duration": "P3D", "days": "working"}
    drawn = await client.post(url(province), json=definition,
                              headers={**admin.headers, "Accept-Language": "en"})
    assert drawn.status_code == 200, drawn.text
    assert drawn.headers["content-type"].startswith("image/svg+xml")
    shown = texts(drawn.text)
    for state in definition["states"]:
        assert state["name"] in shown
    assert "cap_giay_chung_nhan ✎" in shown  # the signed action is marked
    assert "SLA P3D (working days)" in shown
    again = await client.post(url(province), json=definition,
                              headers={**admin.headers, "Accept-Language": "en"})
    assert again.text == drawn.text  # deterministic
    root = ElementTree.fromstring(drawn.text)
    assert not list(root.iter(f"{SVG}script")) and "style=" not in drawn.text


async def test_an_unfinished_draft_is_still_drawn(client: httpx.AsyncClient,
                                                  platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    draft = {"kind": "Workflow", "key": "chua-xong", "title": {"vi": "<b>&\"'", "en": "x"},
             "states": [{"name": "nop", "type": "start", "title": {"vi": "Nộp <hồ sơ>"}},
                        {"type": "weird"}, {"name": "le\x01"}],
             "actions": [{"name": "tiep_nhan", "from": ["nop", 7], "to": "xu_ly"},
                         {"name": "vong", "from": "nop", "to": "nop",
                          "signature": {"required": True}},
                         {"from": "khong_co"}, {"name": "x", "to": {"a": 1}}]}
    drawn = await client.post(url(province), json=draft, headers=admin.headers)
    assert drawn.status_code == 200, drawn.text
    root = ElementTree.fromstring(drawn.text)
    missing = [g for g in root.iter(f"{SVG}g") if "state-missing" in g.get("class", "")]
    assert {g.get("data-state") for g in missing} == {"xu_ly", "khong_co"}
    assert "Nộp <hồ sơ>" in texts(drawn.text)
    for empty in ({}, {"states": [], "actions": []}):
        assert (await client.post(url(province), json=empty,
                                  headers=admin.headers)).status_code == 200


async def test_garbage_is_a_422_with_pointers(client: httpx.AsyncClient,
                                              platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    cases: list[tuple[Any, str]] = [
        ({"states": "nop", "actions": []}, "/states"),
        ({"states": [{"name": "a"}, 3], "actions": []}, "/states/1"),
        ({"states": [], "actions": [{"name": ["x"]}]}, "/actions/0/name"),
        ([1, 2], ""),
        ({"states": [{"name": f"s{i}"} for i in range(diagram.MAX_STATES + 1)]}, "/states"),
    ]
    for body, pointer in cases:
        refused = await client.post(url(province), json=body, headers=admin.headers)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert pointer in {e.get("pointer") for e in refused.json()["errors"]}
    broken = await client.post(url(province), content=b"{not json",
                               headers={**admin.headers, "Content-Type": "application/json"})
    assert broken.status_code == 422


async def test_it_needs_workflows_read_at_the_unit(client: httpx.AsyncClient,
                                                   platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    other, _ = await platform.province_with_admin()
    definition = catalogue("ho-kinh-doanh")
    for_other = await client.post(url(other), json=definition, headers=admin.headers)
    assert for_other.status_code in (403, 404), for_other.text
    assert for_other.headers["content-type"] == "application/problem+json"
    officer = await platform.client_for(province, ["officer"], by=admin)
    response = await client.post(url(province), json=definition, headers=officer.headers)
    assert response.status_code == 403, response.text
    designer = await platform.client_for(province, ["workflow_designer"], by=admin)
    response = await client.post(url(province), json=definition, headers=designer.headers)
    assert response.status_code == 200, response.text
    anonymous = await client.post(url(province), json=definition)
    assert anonymous.status_code == 401


def test_the_drawing_is_pure_and_escapes_text() -> None:
    definition = copy.deepcopy(catalogue("ho-kinh-doanh"))
    definition["states"][1]["title"] = {"vi": "</text><script>alert(1)</script>", "en": "x"}
    svg = diagram.render(definition, "vi")
    assert svg == diagram.render(copy.deepcopy(definition), "vi")
    assert "<script>" not in svg
    assert "</text><script>alert(1)</script>"[:20] in "".join(texts(svg))
