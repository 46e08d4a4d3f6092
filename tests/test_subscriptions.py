"""Subscriptions: a unit sends its (and its communes') case events to another system through
the data-sharing gateway, set up without code. Tested against a gateway simulator speaking
the X-Road REST message protocol and an LGSP token exchange over real HTTP, with faults."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.core.db import utcnow
from app.deliveries import worker as deliveries
from tests.conftest import only_postgresql
from tests.gateway_simulator import (
    ACCESS_KEY,
    CLIENT,
    SECRET_KEY,
    SERVICE,
    GatewaySimulator,
)
from tests.platform import Platform
from tests.test_cases import Office, act, office, submit
from tests.test_form_replicas import replicas  # noqa: F401 (a fixture)
from tests.test_workflows import catalogue

OPTIONS = deliveries.Options(max_attempts=4, timeout_seconds=1, backoff_seconds=1,
                             allow_private_targets=True)
PARTS = ("instance", "member_class", "member_code", "subsystem")


@pytest.fixture
def gateway() -> Iterator[GatewaySimulator]:
    with GatewaySimulator().running() as simulator:
        yield simulator


def xroad(gateway: GatewaySimulator, service: tuple[str, ...] = SERVICE,
          client: tuple[str, ...] = CLIENT) -> dict[str, Any]:
    return {"security_server": gateway.url,
            "service": dict(zip((*PARTS, "service_code"), service, strict=True)),
            "client": dict(zip(PARTS, client, strict=True)), "user_id": "VN-CCCD-001099012345"}


def token_gateway(gateway: GatewaySimulator, service: str = "su-kien",
                  **extra: Any) -> dict[str, Any]:
    return {"url": f"{gateway.url}/lgsp/{service}", "token_url": f"{gateway.url}/token",
            "key": ACCESS_KEY, "secret": SECRET_KEY, **extra}


async def subscribe(client: httpx.AsyncClient, where: Office, name: str, transport: str,
                    target: dict[str, Any], **body: Any) -> dict[str, Any]:
    made = await client.post(f"/api/v1/tenants/{where.province}/subscriptions",
                             headers=where.admin.headers, json={
                                 "name": name, "transport": transport, "target": target,
                                 "events": ["case.opened"], **body})
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


async def run(platform: Platform, at: datetime | None = None) -> deliveries.Sent:
    moment = at or utcnow()
    return await deliveries.run_once(platform.app.state.db, "w1", options=OPTIONS,
                                     clock=lambda: moment)


def of_case(gateway: GatewaySimulator, case_id: str) -> list[Any]:
    return [a for a in gateway.received if a.body["case"]["id"] == case_id]


async def deliveries_of(client: httpx.AsyncClient, where: Office,
                        case_id: str) -> list[dict[str, Any]]:
    listed = await client.get(f"/api/v1/tenants/{where.province}/deliveries",
                              params={"limit": "500"}, headers=where.admin.headers)
    return sorted((d for d in listed.json()["items"] if d["case"] == case_id),
                  key=lambda d: (d["revision"], d["ordinal"]))


async def test_case_events_reach_an_x_road_service_with_the_chosen_fields_only(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    where = await office(platform, client)
    service = ("VN", "GOV", "000.00.00/G22", "LGSP", "nhận sự kiện")  # parts to encode
    gateway.services.add(service)
    subscription = await subscribe(
        client, where, "lgsp-ho-so", "xroad", xroad(gateway, service),
        events=["case.opened", "case.action_taken"],
        fields=["ten_ho_kinh_doanh", "chu_ho_ho_ten", "chu_ho_dan_toc"])
    assert subscription["personal_data"] == "none"
    case_id = (await submit(client, where))["case"]
    moved = await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)
    assert moved.status_code == 200

    await run(platform)
    arrived = of_case(gateway, case_id)
    assert [a.body["type"] for a in arrived] == ["case.opened", "case.action_taken"]
    first = arrived[0]
    assert first.path == "/r1/VN/GOV/000.00.00%2FG22/LGSP/nh%E1%BA%ADn%20s%E1%BB%B1%20ki%E1%BB%87n"
    assert first.headers["x-road-client"] == "VN/GOV/000.00.00.H29/NENTANG"
    assert first.headers["x-road-issue"] == case_id
    assert first.headers["x-road-userid"] == "VN-CCCD-001099012345"
    assert first.body["tenant"] == where.commune and first.body["subscription"] == "lgsp-ho-so"
    # Personal-data fields are not sent to a subscription not allowed them.
    assert list(first.body["data"]) == ["ten_ho_kinh_doanh"]

    [delivery, _] = await deliveries_of(client, where, case_id)
    assert delivery["status"] == "delivered" and delivery["kind"] == "xroad"
    attempts = await client.get(f"/api/v1/tenants/{where.province}/deliveries/"
                                f"{delivery['id']}/attempts", headers=where.admin.headers)
    [audit] = attempts.json()
    assert audit["service"] == "VN/GOV/000.00.00/G22/LGSP/nhận sự kiện"
    assert audit["message_id"] == first.headers["x-road-id"]
    assert audit["body_sha256"] == hashlib.sha256(json.dumps(
        first.body, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    assert audit["detail"]["x-road-request-id"] and audit["detail"]["x-road-request-hash"]
    assert (audit["status"], audit["outcome"]) == (200, "delivered")


async def test_x_road_errors_are_told_apart_from_the_providers(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    where = await office(platform, client)
    await subscribe(client, where, "unknown-service", "xroad",
                    xroad(gateway, ("VN", "GOV", "X", "Y", "khong-co")))
    await subscribe(client, where, "not-allowed", "xroad",
                    xroad(gateway, client=("VN", "GOV", "000.00.00.H99", "KHAC")))
    await subscribe(client, where, "provider-fails", "xroad", xroad(gateway))
    gateway.fault("5xx")
    case_id = (await submit(client, where))["case"]
    await run(platform)
    found = {d["target"]: d for d in await deliveries_of(client, where, case_id)}
    subs = {s["id"]: s["name"] for s in (await client.get(
        f"/api/v1/tenants/{where.province}/subscriptions", headers=where.admin.headers)).json()}
    by_name = {subs[target]: d for target, d in found.items()}
    assert by_name["not-allowed"]["status"] == "dead"  # our side is wrong: not retried
    assert by_name["not-allowed"]["last_error"] == "X-Road: Client.AccessDenied"
    assert by_name["unknown-service"]["status"] == "pending"  # the gateway's: retried
    assert by_name["unknown-service"]["last_error"] == "X-Road: Server.ServerProxy.UnknownService"
    assert by_name["provider-fails"]["status"] == "pending"
    assert by_name["provider-fails"]["last_error"] == "answered 500"
    await run(platform, utcnow() + timedelta(minutes=1))
    found = {subs[d["target"]]: d for d in await deliveries_of(client, where, case_id)}
    assert found["provider-fails"]["status"] == "delivered"


async def test_a_token_gateway_token_is_cached_renewed_once_on_401_and_403_is_final(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    where = await office(platform, client)
    made = await subscribe(client, where, "lgsp-token", "token-gateway", token_gateway(gateway))
    assert made["target"]["secret"] == "***"
    for _ in range(3):
        await submit(client, where)
    issued = gateway.tokens_issued
    await run(platform)
    assert gateway.tokens_issued - issued <= 1  # one token serves every send

    gateway.revoke_tokens()
    case_id = (await submit(client, where))["case"]
    await run(platform)
    assert [d["status"] for d in await deliveries_of(client, where, case_id)] == ["delivered"]
    assert gateway.tokens_issued - issued == 2  # renewed once, at once

    await subscribe(client, where, "forbidden", "token-gateway",
                    token_gateway(gateway, "forbidden"))
    await subscribe(client, where, "wrong-key", "token-gateway",
                    token_gateway(gateway, secret="not-the-secret"))
    gateway.fault("429")
    case_id = (await submit(client, where))["case"]
    start = utcnow()
    await run(platform, start)
    rows = await deliveries_of(client, where, case_id)
    by_error = sorted((d["status"], d["last_status"]) for d in rows)
    assert by_error == [("dead", 401), ("dead", 403), ("pending", 429)], rows
    throttled = next(d for d in rows if d["last_status"] == 429)
    assert datetime.fromisoformat(throttled["next_attempt_at"]) >= start + timedelta(seconds=1)


async def test_a_workflows_sharing_event_goes_to_the_subscriptions_that_want_it(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    definition = catalogue("ho-kinh-doanh")
    review = next(s for s in definition["states"] if s["name"] == "xem_xet_ho_so")
    review["on_enter"] = [{"type": "sharing", "event": "hkd.da-tiep-nhan"}]
    where = await office(platform, client, definition)
    await subscribe(client, where, "tiep-nhan", "xroad", xroad(gateway),
                    events=["sharing:hkd.da-tiep-nhan"])
    await subscribe(client, where, "other-event", "xroad", xroad(gateway),
                    events=["sharing:khac"])
    case_id = (await submit(client, where))["case"]
    await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)
    await run(platform)
    arrived = of_case(gateway, case_id)
    assert [(a.body["subscription"], a.body["type"]) for a in arrived] == [
        ("tiep-nhan", "case.hook.sharing")]
    assert arrived[0].body["event"]["hook"] == {"type": "sharing", "event": "hkd.da-tiep-nhan"}


async def test_a_subscription_allowed_personal_data_gets_it(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    where = await office(platform, client)
    fields = ["ten_ho_kinh_doanh", "chu_ho_ho_ten", "chu_ho_dan_toc"]
    await subscribe(client, where, "basic", "xroad", xroad(gateway), fields=fields,
                    personal_data="basic")
    await subscribe(client, where, "sensitive", "xroad", xroad(gateway), fields=fields,
                    personal_data="sensitive")
    case_id = (await submit(client, where))["case"]
    await run(platform)
    got = {a.body["subscription"]: sorted(a.body["data"]) for a in of_case(gateway, case_id)}
    assert got == {"basic": ["chu_ho_ho_ten", "ten_ho_kinh_doanh"],
                   "sensitive": sorted(fields)}

    # Allowing personal data takes holding it: a unit admin without those permissions may not.
    await platform.role_for(where.province, "sharing_admin", ["tenants:read", "tenants:write"],
                            by=where.admin)
    limited = await platform.client_for(where.province, ["sharing_admin"], by=where.admin)
    refused = await client.post(f"/api/v1/tenants/{where.province}/subscriptions",
                                headers=limited.headers, json={
                                    "name": "more", "transport": "xroad",
                                    "target": xroad(gateway), "events": ["*"],
                                    "personal_data": "basic"})
    assert (refused.status_code, refused.json()["code"]) == (403, "personal-data-not-allowed")


async def test_bad_subscriptions_are_refused_naming_the_field(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    where = await office(platform, client)
    base = f"/api/v1/tenants/{where.province}/subscriptions"
    good = {"name": "s1", "transport": "xroad", "target": xroad(gateway),
            "events": ["case.*"]}
    no_service = {k: v for k, v in xroad(gateway).items() if k != "service"}
    for change, pointer in (
            ({"transport": "fax"}, "/transport"),
            ({"target": no_service}, "/target/service"),
            ({"target": {**xroad(gateway), "security_server": "ftp://x"}},
             "/target/security_server"),
            ({"target": {**xroad(gateway), "client_certificate": "-----BEGIN"}},
             "/target/client_key"),
            ({"events": ["case.opened", "tat.ca"]}, "/events/1"),
            ({"events": []}, "/events"),
            ({"name": "Tên có dấu"}, "/name")):
        refused = await client.post(base, json={**good, **change}, headers=where.admin.headers)
        assert refused.status_code == 422, (change, refused.text)
        assert [e["pointer"] for e in refused.json()["errors"]] == [pointer], refused.text
    assert (await client.get(base, headers=where.admin.headers)).json() == []
    assert (await client.post(base, json=good, headers=where.admin.headers)).status_code == 201
    clash = await client.post(base, json=good, headers=where.admin.headers)
    assert (clash.status_code, clash.json()["errors"][0]["pointer"]) == (409, "/name")


async def test_deleting_a_subscription_kills_its_pending_deliveries(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    where = await office(platform, client)
    made = await subscribe(client, where, "going", "xroad", xroad(gateway))
    case_id = (await submit(client, where))["case"]
    gone = await client.delete(f"/api/v1/tenants/{where.province}/subscriptions/{made['id']}",
                               headers=where.admin.headers)
    assert gone.status_code == 204
    await run(platform)
    [delivery] = await deliveries_of(client, where, case_id)
    assert (delivery["status"], delivery["last_error"]) == ("dead",
                                                            "the subscription was deleted")
    assert of_case(gateway, case_id) == []


async def test_faults_on_the_way_lose_nothing_and_keep_each_cases_order(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    """The gateway is down while cases are made, then fails in every way it can; every event
    arrives, in order per case, and dropping repeats by event id leaves one of each."""
    where = await office(platform, client)
    await subscribe(client, where, "all", "xroad", xroad(gateway), events=["case.*"])
    gateway.down = True
    cases = []
    for _ in range(6):
        case_id = (await submit(client, where))["case"]
        await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)
        cases.append(case_id)
    moment = utcnow()
    await run(platform, moment)
    assert all(a.fault is None for a in gateway.received if a.body["case"]["id"] in cases)
    gateway.down = False
    gateway.slow_seconds = 1.5  # beyond the 1 s timeout: the sender gives up, it arrived
    gateway.fault("drop", "duplicate", "5xx", "gateway", "429", "slow")
    for minutes in range(1, 12):
        await run(platform, moment + timedelta(minutes=minutes))
    for case_id in cases:
        rows = await deliveries_of(client, where, case_id)
        assert [d["status"] for d in rows] == ["delivered"] * 2, rows
        unique = [a for a in gateway.unique_events() if a.body["case"]["id"] == case_id]
        assert [a.body["type"] for a in unique] == ["case.opened", "case.action_taken"]
    repeats = len([a for a in gateway.received if a.body["case"]["id"] in cases
                   and a.fault in (None, "drop", "duplicate", "slow")])
    assert repeats > len(cases) * 2  # some arrived twice; the ids told them apart


async def test_the_security_server_is_reached_over_mutual_tls(
        client: httpx.AsyncClient, platform: Platform, tmp_path: Any) -> None:
    """The security server demands the unit's client certificate: with it the event
    arrives; without it, or with the wrong one, the TLS handshake fails and nothing does."""
    import ssl

    from tests.pki import build, key_pem, tls_identity

    pki = build()
    server, unit = tls_identity(pki, server=True, name="ss1"), tls_identity(
        pki, server=False, name="NENTANG")
    stranger = tls_identity(build(), server=False, name="KHAC")
    (tmp_path / "server.pem").write_text(server.pem + key_pem(server))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=pki.root.pem)
    context.load_cert_chain(tmp_path / "server.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    where = await office(platform, client)
    with GatewaySimulator().running(tls=context) as gateway:
        base = xroad(gateway)
        assert base["security_server"].startswith("https://")
        for name, identity in (("ours", unit), ("theirs", stranger), ("none", None)):
            target = {**base, "server_ca": pki.root.pem}
            if identity is not None:
                target.update(client_certificate=identity.pem, client_key=key_pem(identity))
            await subscribe(client, where, name, "xroad", target)
        case_id = (await submit(client, where))["case"]
        await run(platform)
        subs = {s["id"]: s["name"] for s in (await client.get(
            f"/api/v1/tenants/{where.province}/subscriptions",
            headers=where.admin.headers)).json()}
        found = {subs[d["target"]]: d for d in await deliveries_of(client, where, case_id)}
        assert found["ours"]["status"] == "delivered"
        assert found["theirs"]["status"] == found["none"]["status"] == "pending"
        assert [a.body["subscription"] for a in of_case(gateway, case_id)] == ["ours"]


async def test_a_submission_and_a_decision_are_events_too(
        client: httpx.AsyncClient, platform: Platform, gateway: GatewaySimulator) -> None:
    where = await office(platform, client)
    await subscribe(client, where, "submissions", "xroad", xroad(gateway),
                    events=["submission.submitted", "case.decision_issued"],
                    fields=["ten_ho_kinh_doanh"])
    submitted = await submit(client, where)
    case_id = submitted["case"]
    await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)
    refused = await act(client, where, case_id, "tu_choi_dang_ky", where.officer,
                        {"comment": "Ngành nghề cấm kinh doanh"})
    assert refused.status_code == 200, refused.text
    await run(platform)
    mine = [a.body for a in gateway.received
            if a.body.get("submission", {}).get("id") == submitted["id"]
            or a.body.get("case", {}).get("id") == case_id]
    # Two streams (the submission's, the case's): each in order, not ordered between them.
    by_type = {b["type"]: b for b in mine}
    assert sorted(by_type) == ["case.decision_issued", "submission.submitted"]
    assert by_type["submission.submitted"]["submission"]["form"] == "ho-kinh-doanh"
    assert list(by_type["submission.submitted"]["data"]) == ["ten_ho_kinh_doanh"]
    assert by_type["case.decision_issued"]["event"]["outcome"] == "rejected"


@only_postgresql()
async def test_the_command_line_applies_lists_and_deletes_subscriptions(
        client: httpx.AsyncClient, platform: Platform, replicas: list[str],  # noqa: F811
        gateway: GatewaySimulator, tmp_path: Any) -> None:
    """``nentang subscriptions`` as an API client against a real server: applying a file
    twice creates, then replaces; secrets never come back; bad input names the field."""
    where = await office(platform, client)
    command = [sys.executable, "-m", "app.cli", "subscriptions"]
    env = {**os.environ, "NENTANG_CLIENT_ID": where.admin.client_id,
           "NENTANG_CLIENT_SECRET": where.admin.client_secret}

    async def nentang(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run, [*command, *args, "--api", replicas[0], "--tenant", where.province],
            env=env, capture_output=True, text=True, timeout=60, check=False)

    file = tmp_path / "subscriptions.json"
    file.write_text(json.dumps([
        {"name": "lgsp-xroad", "transport": "xroad", "target": xroad(gateway),
         "events": ["case.*"]},
        {"name": "lgsp-token", "transport": "token-gateway", "target": token_gateway(gateway),
         "events": ["case.closed"]}]))
    first = await nentang("apply", "--file", str(file))
    assert first.returncode == 0, first.stderr
    assert "created lgsp-xroad" in first.stderr and "created lgsp-token" in first.stderr
    again = await nentang("apply", "--file", str(file))
    assert "replaced lgsp-xroad" in again.stderr and "replaced lgsp-token" in again.stderr
    listed = await nentang("list")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["lgsp-token", "lgsp-xroad"]
    assert rows[0]["target"]["secret"] == "***" and SECRET_KEY not in listed.stdout

    file.write_text(json.dumps({"name": "bad", "transport": "xroad", "target": {},
                                "events": ["case.*"]}))
    bad = await nentang("apply", "--file", str(file))
    assert bad.returncode == 1 and "/target/security_server" in bad.stderr
    gone = await nentang("delete", "--name", "lgsp-token")
    assert gone.returncode == 0, gone.stderr
    assert [r["name"] for r in (await client.get(
        f"/api/v1/tenants/{where.province}/subscriptions",
        headers=where.admin.headers)).json()] == ["lgsp-xroad"]
