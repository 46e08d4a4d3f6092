"""Prefilling a form from a remote service (the population register, by citizen-ID number),
against a register simulator over real HTTP: the answer fills the mapped fields; a slow or
failing register answers "fill in by hand" instead of failing the form, a circuit breaker
stops asking a register that keeps failing and tries again later, and answers are cached."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.http_servers import serve
from tests.platform import Platform
from tests.test_cases import Office, office

PEOPLE = {"001099012345": {"ho_ten": "Nguyễn Văn A", "ngay_sinh": "1990-05-17",
                           "noi_thuong_tru": {"tinh": "01", "xa": "00001"}}}


class Register:
    def __init__(self) -> None:
        self.calls = 0
        self.mode = "ok"  # ok | fail | slow
        self.url = ""

    def respond(self, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.calls += 1
        if self.mode == "fail":
            return 503, {}, b"{}"
        if self.mode == "slow":
            time.sleep(1.0)
        person = PEOPLE.get(path.rsplit("/", 1)[-1])
        if person is None:
            return 404, {}, b'{"error": "not found"}'
        return 200, {"content-type": "application/json"}, json.dumps(person).encode()


@pytest.fixture
def register() -> Iterator[Register]:
    simulator = Register()
    with serve(simulator.respond) as base:
        simulator.url = base
        yield simulator


def lookup(register: Register, **settings: Any) -> dict[str, Any]:
    return {"form": "ho-kinh-doanh", "field": "chu_ho_so_dinh_danh", "settings": {
        "url": f"{register.url}/cong-dan/{{value}}",
        "fills": {"chu_ho_ho_ten": "/ho_ten", "chu_ho_ngay_sinh": "/ngay_sinh"},
        "timeout_seconds": 0.3, "cache_seconds": 60, "failures_to_open": 2,
        "open_seconds": 0.5, **settings}}


async def prefill(client: httpx.AsyncClient, where: Office, value: str) -> dict[str, Any]:
    answer = await client.post(f"/api/v1/tenants/{where.commune}/forms/ho-kinh-doanh/prefill",
                               headers=where.portal.headers,
                               json={"field": "chu_ho_so_dinh_danh", "value": value})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_citizen_lookup_fills_the_form_and_is_cached(
        client: httpx.AsyncClient, platform: Platform, register: Register) -> None:
    where = await office(platform, client)
    made = await client.put(f"/api/v1/tenants/{where.province}/lookups/dan-cu",
                            headers=where.admin.headers, json=lookup(register))
    assert made.status_code == 200, made.text
    first = await prefill(client, where, "001099012345")  # the commune inherits it
    assert (first["available"], first["found"], first["source"]) == (True, True, "live")
    assert first["values"] == {"chu_ho_ho_ten": "Nguyễn Văn A", "chu_ho_ngay_sinh": "1990-05-17"}
    again = await prefill(client, where, "001099012345")
    assert again["source"] == "cache" and register.calls == 1
    nobody = await prefill(client, where, "079000000000")
    assert (nobody["available"], nobody["found"], nobody["values"]) == (True, False, {})


async def test_a_failing_register_means_fill_in_by_hand_and_the_circuit_opens(
        client: httpx.AsyncClient, platform: Platform, register: Register) -> None:
    where = await office(platform, client)
    await client.put(f"/api/v1/tenants/{where.province}/lookups/dan-cu",
                     headers=where.admin.headers, json=lookup(register, cache_seconds=0))
    register.mode = "slow"  # past the 0.3 s timeout
    slow = await prefill(client, where, "001099012345")
    assert slow["available"] is False and "fill in by hand" in slow["reason"]
    assert slow["reason_vi"]
    register.mode = "fail"
    await prefill(client, where, "001099012345")  # the second failure in a row: it opens
    calls = register.calls
    opened = await prefill(client, where, "001099012345")
    assert (opened["available"], opened["source"]) == (False, "circuit-open")
    assert register.calls == calls  # not asked while open
    register.mode = "ok"
    await asyncio.sleep(0.6)  # open_seconds: one trial, which succeeds and closes it
    trial = await prefill(client, where, "001099012345")
    assert (trial["available"], trial["source"]) == (True, "live")
    assert register.calls == calls + 1


async def test_a_lookup_is_checked_against_the_form(
        client: httpx.AsyncClient, platform: Platform, register: Register) -> None:
    where = await office(platform, client)
    base = f"/api/v1/tenants/{where.province}/lookups/dan-cu"
    good = lookup(register)
    for body, pointer in (({**good, "field": "khong_co"}, "/field"),
                          ({**good, "form": "khong-co"}, "/form"),
                          ({**good, "settings": {**good["settings"], "fills": {"x": "/a"}}},
                           "/settings/fills/x"),
                          ({**good, "settings": {**good["settings"], "timeout_seconds": 99}},
                           "/settings/timeout_seconds")):
        refused = await client.put(base, json=body, headers=where.admin.headers)
        assert refused.status_code == 422, refused.text
        assert [e["pointer"] for e in refused.json()["errors"]] == [pointer], refused.text
    none = await client.post(f"/api/v1/tenants/{where.commune}/forms/ho-kinh-doanh/prefill",
                             headers=where.portal.headers,
                             json={"field": "chu_ho_so_dinh_danh", "value": "1"})
    assert none.status_code == 404
    assert (await client.put(base, json=good, headers=where.admin.headers)).status_code == 200
    listed = await client.get(f"/api/v1/tenants/{where.province}/lookups",
                              headers=where.admin.headers)
    assert [r["name"] for r in listed.json()] == ["dan-cu"]
    assert (await client.delete(base, headers=where.admin.headers)).status_code == 204


async def test_a_lookup_through_the_x_road_gateway(
        client: httpx.AsyncClient, platform: Platform) -> None:
    from tests.gateway_simulator import GatewaySimulator
    from tests.test_subscriptions import xroad

    where = await office(platform, client)
    with GatewaySimulator(people={"001099012345": {"ho_ten": "Trần Thị B"}}).running() as gw:
        body = {"form": "ho-kinh-doanh", "field": "chu_ho_so_dinh_danh", "settings": {
            "xroad": xroad(gw), "parameter": "so_dinh_danh",
            "fills": {"chu_ho_ho_ten": "/ho_ten"}}}
        made = await client.put(f"/api/v1/tenants/{where.province}/lookups/dan-cu-xroad",
                                headers=where.admin.headers, json=body)
        assert made.status_code == 200, made.text
        found = await prefill(client, where, "001099012345")
        assert found["values"] == {"chu_ho_ho_ten": "Trần Thị B"}
        assert (await prefill(client, where, "079000000000"))["found"] is False


async def test_a_lookup_may_not_reach_inside_the_network_unless_allowed(register: Register) -> None:
    """The operator's rule for webhooks holds for lookups too: a private address is refused
    (an unavailable lookup) unless private targets are allowed."""
    import uuid as uuid_module

    from app.sharing import lookups
    from app.sharing.models import Lookup

    row = Lookup(id=uuid_module.uuid4(), name="x", form="f", field="k",
                 settings=lookup(register)["settings"])
    refused = await lookups.call(row, "001099012345", allow_private=False)
    assert (refused.available, register.calls) == (False, 0)
    allowed = await lookups.call(row, "001099012345", allow_private=True)
    assert allowed.available and register.calls == 1
