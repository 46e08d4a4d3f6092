"""OpenTelemetry metrics against the real app (SQLite and PostgreSQL): HTTP latency by route
template, requests by province-level tenant, SLA breaches fired by the worker, delivery
outcomes and the outbox backlog, signature and gateway call outcomes; the Prometheus scrape
endpoint; and nothing recorded when no exporter is configured."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from app.cases import timers
from app.core import metrics
from app.core.db import utcnow
from app.core.telemetry import service_resource
from app.deliveries import worker as deliveries
from tests.csc_simulator import CALLBACK_SECRET, CLIENT_ID, CLIENT_SECRET, CscSimulator
from tests.pki import Pki
from tests.platform import Platform
from tests.processes import free_port
from tests.test_cases import office, read, submit
from tests.test_deliveries import OPTIONS, hooked, received_case, secret_for
from tests.test_prefill import prefill
from tests.test_signing import awaiting_signature, configure, pki, seal, sign_step
from tests.webhook_receiver import Receiver

__all__ = ["pki"]  # the session's test PKI fixture

CASE_ROUTE = "/api/v1/tenants/{tenant}/cases/{case_id}"

Points = list[tuple[dict[str, Any], Any]]


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    """Metrics recorded in memory for the test; the process's own set-up afterwards."""
    found = InMemoryMetricReader()
    metrics.setup_metrics("api", readers=[found])
    try:
        yield found
    finally:
        metrics.shutdown_metrics()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


def points(reader: InMemoryMetricReader, name: str) -> Points:
    """Every data point of the metric ``name``: (attributes, value or histogram point)."""
    found: Points = []
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", point)
                        found.append((dict(point.attributes or {}), value))
    return found


def total(found: Points, **attributes: Any) -> Any:
    return sum(v for a, v in found if all(a.get(k) == w for k, w in attributes.items()))


# ---- HTTP requests -------------------------------------------------------------------------------


async def test_a_request_is_recorded_by_route_template_and_province_level_tenant(
        client: httpx.AsyncClient, platform: Platform, reader: InMemoryMetricReader) -> None:
    where = await office(platform, client)
    case_id = (await submit(client, where))["case"]
    # A process that has not met the province yet looks it up once.
    metrics._tree.level_codes.clear()
    read_case = await read(client, where, case_id, where.officer)
    assert read_case.status_code == 200, read_case.text

    durations = points(reader, "http.server.request.duration")
    ours = [(a, p) for a, p in durations if a.get("http.route") == CASE_ROUTE
            and a["http.request.method"] == "GET" and a["http.response.status_code"] == 200]
    assert ours and sum(p.count for _, p in ours) >= 1
    assert all(p.sum > 0 for _, p in ours)
    values = [str(v) for a, _ in durations for v in a.values()]
    assert not [v for v in values if case_id in v or where.commune in v]
    assert "tenant" not in {k for a, _ in durations for k in a}

    requests = points(reader, "nentang.requests")
    assert total(requests, tenant=where.province, status_class="2xx",
                 **{"http.route": CASE_ROUTE}) >= 1
    tenants = {a.get("tenant") for a, _ in requests}
    assert where.province in tenants and where.commune not in tenants
    # The province's own requests count under it too; a commune's never under its own code.
    assert total(requests, tenant=where.province) > total(
        requests, tenant=where.province, **{"http.route": CASE_ROUTE})


async def test_unknown_paths_and_tenants_add_no_attribute_values(
        client: httpx.AsyncClient, platform: Platform, reader: InMemoryMetricReader) -> None:
    where = await office(platform, client)
    await client.get(where.cases(), headers=where.officer.headers)
    before = {a.get("http.route") for a, _ in points(reader, "http.server.request.duration")}
    odd = f"/api/v1/no-such-thing/{uuid.uuid4()}"
    assert (await client.get(odd)).status_code == 404
    assert (await client.request("BREW", "/api/v1/tenants")).status_code in (404, 405)
    nobody = "KHONGCO" + uuid.uuid4().hex[:6].upper()
    missing = await client.get(f"/api/v1/tenants/{nobody}/cases", headers=where.admin.headers)
    assert missing.status_code in (403, 404)

    durations = points(reader, "http.server.request.duration")
    assert {a.get("http.route") for a, _ in durations} <= before | {
        None, "/api/v1/tenants", "/api/v1/tenants/{tenant}/cases"}
    assert any("http.route" not in a and a["http.response.status_code"] == 404
               for a, _ in durations)
    assert {a["http.request.method"] for a, _ in durations} <= {
        "GET", "POST", "PUT", "DELETE", "PATCH", "_OTHER"}
    values = {str(v) for a, _ in durations + points(reader, "nentang.requests")
              for v in a.values()}
    assert not [v for v in values if "no-such-thing" in v or nobody in v or "BREW" in v]


# ---- the worker ----------------------------------------------------------------------------------


def later(days: float) -> Any:
    moment = utcnow() + timedelta(days=days)
    return lambda: moment


async def test_an_sla_breach_fired_by_the_worker_is_counted_by_province(
        client: httpx.AsyncClient, platform: Platform, reader: InMemoryMetricReader) -> None:
    where = await office(platform, client)  # the case must finish in 3 working days
    case_id = (await submit(client, where))["case"]
    assert (await client.post(where.cases(f"/{case_id}/claim"),
                              headers=where.officer.headers)).status_code == 200
    metrics._tree.paths_by_id.clear()  # as a fresh worker process: nothing known yet
    metrics._tree.level_codes.clear()
    fired = await timers.run_once(platform.app.state.db, "w1", clock=later(10))
    assert fired.fired >= 1 and fired.errors == []

    breaches = [(a, v) for a, v in points(reader, "nentang.sla.breaches")
                if a.get("tenant") == where.province]
    assert breaches, points(reader, "nentang.sla.breaches")
    assert {a["rule"] for a, _ in breaches} <= {"notify", "escalate", "reassign", "action",
                                                "none"}
    assert {a["rule"] for a, _ in breaches} & {"notify", "escalate"}
    tenants = {a.get("tenant") for a, _ in points(reader, "nentang.sla.breaches")}
    assert where.commune not in tenants


async def _backlog(platform: Platform, reader: InMemoryMetricReader) -> tuple[float, int]:
    await metrics.observe_backlog(platform.app.state.db)
    [(_, lag)] = points(reader, "nentang.outbox.lag")
    [(_, pending)] = points(reader, "nentang.outbox.pending")
    return lag, pending


async def test_delivery_outcomes_and_the_outbox_backlog(
        client: httpx.AsyncClient, platform: Platform, reader: InMemoryMetricReader,
        receiver: Receiver) -> None:
    db = platform.app.state.db
    # Other tests share the database: settle whatever they left (one last attempt each).
    await deliveries.run_once(db, "drain", options=replace(OPTIONS, max_attempts=1),
                              clock=later(365))
    assert await _backlog(platform, reader) == (0.0, 0)

    where = await office(platform, client, hooked(receiver.url()))
    await secret_for(client, where.province, where.admin.headers)
    await received_case(client, where)  # two webhook deliveries, due now
    await asyncio.sleep(0.01)
    lag, pending = await _backlog(platform, reader)
    assert lag > 0 and pending == 2

    receiver.answer(500)  # the first attempt fails: retried later, its stream held
    start = utcnow()
    await deliveries.run_once(db, "w1", options=OPTIONS, clock=lambda: start)
    await deliveries.run_once(db, "w1", options=OPTIONS, clock=later(1))
    sent = points(reader, "nentang.deliveries")
    assert total(sent, outcome="retry", transport="webhook") >= 1
    assert total(sent, outcome="delivered", transport="webhook") >= 2
    assert {a["outcome"] for a, _ in sent} <= {"delivered", "retry", "dead"}
    assert await _backlog(platform, reader) == (0.0, 0)


# ---- signatures ----------------------------------------------------------------------------------


@pytest.fixture
def csc() -> Iterator[CscSimulator]:
    with CscSimulator().running() as simulator:
        yield simulator


async def test_signature_outcomes_and_remote_signing_calls(
        client: httpx.AsyncClient, platform: Platform, reader: InMemoryMetricReader, pki: Pki,
        csc: CscSimulator) -> None:
    sealed = await office(platform, client)
    assert (await configure(client, sealed.province, sealed.admin, seal(pki))).status_code == 200
    signed = await sign_step(client, sealed, await awaiting_signature(client, sealed))
    assert signed.status_code == 200, signed.text
    assert total(points(reader, "nentang.signatures"), outcome="signed", provider="pkcs12") >= 1

    remote = await office(platform, client)
    configured = await configure(client, remote.province, remote.admin, {
        "provider": "csc", "trust_anchors": [pki.root.pem],
        "signer_match": {"certificate": "UID", "principal": "client_id",
                         "strip_prefixes": ["CCCD:"]},
        "config": {"base_url": csc.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                   "callback_secret": CALLBACK_SECRET, "user_attribute": "client_id"}})
    assert configured.status_code == 200, configured.text
    csc.enroll(remote.reviewer.client_id, pki.person(f"CCCD:{remote.reviewer.client_id}"))
    case_id = await awaiting_signature(client, remote)
    pending = await sign_step(client, remote, case_id)
    assert pending.status_code == 202, pending.text
    csc.reject(pending.json()["transaction_id"])
    callback = csc.callbacks[-1]
    answered = await client.post(callback.url.removeprefix("http://nentang.test"),
                                 content=callback.body, headers=callback.headers)
    assert answered.json() == {"status": "failed"}

    outcomes = points(reader, "nentang.signatures")
    assert total(outcomes, outcome="pending", provider="csc") >= 1
    assert total(outcomes, outcome="rejected", provider="csc") >= 1
    calls = points(reader, "nentang.signing.call.duration")
    assert {a["operation"] for a, _ in calls if a["provider"] == "csc"} >= {
        "credentials/list", "credentials/info", "signatures/signHash"}
    assert all(a["outcome"] == "ok" and p.count >= 1 for a, p in calls)

    csc_down = await office(platform, client)
    await configure(client, csc_down.province, csc_down.admin, {
        "provider": "csc", "trust_anchors": [pki.root.pem],
        "config": {"base_url": "http://127.0.0.1:9", "client_id": CLIENT_ID,
                   "client_secret": CLIENT_SECRET, "callback_secret": CALLBACK_SECRET,
                   "user_attribute": "client_id", "timeout_seconds": 2}})
    failed = await sign_step(client, csc_down, await awaiting_signature(client, csc_down))
    assert failed.status_code == 502, failed.text
    assert total(points(reader, "nentang.signatures"), outcome="unavailable",
                 provider="csc") >= 1
    assert [a["operation"] for a, _ in points(reader, "nentang.signing.call.duration")
            if a["outcome"] == "error"] == ["credentials/list"]


# ---- the data-sharing gateway --------------------------------------------------------------------


async def test_gateway_call_outcomes_both_ways(
        client: httpx.AsyncClient, platform: Platform, reader: InMemoryMetricReader) -> None:
    from tests.gateway_simulator import CLIENT, GatewaySimulator
    from tests.test_subscriptions import xroad

    where = await office(platform, client)
    lookups = f"/api/v1/tenants/{where.province}/lookups/dan-cu-xroad"
    with GatewaySimulator(people={"001099012345": {"ho_ten": "Trần Thị B"}}).running() as gw:
        body = {"form": "ho-kinh-doanh", "field": "chu_ho_so_dinh_danh", "settings": {
            "xroad": xroad(gw), "parameter": "so_dinh_danh",
            "fills": {"chu_ho_ho_ten": "/ho_ten"}, "cache_seconds": 0}}
        assert (await client.put(lookups, headers=where.admin.headers,
                                 json=body)).status_code == 200
        assert (await prefill(client, where, "001099012345"))["available"] is True
        stranger = (*CLIENT[:3], "KHAC")  # a subsystem the service does not allow
        body["settings"]["xroad"] = xroad(gw, client=stranger)
        assert (await client.put(lookups, headers=where.admin.headers,
                                 json=body)).status_code == 200
        assert (await prefill(client, where, "001099012345"))["available"] is False

    calls = points(reader, "nentang.gateway.calls")
    assert total(calls, direction="outbound", service="dan-cu-xroad", outcome="ok") == 1
    assert total(calls, direction="outbound", service="dan-cu-xroad", outcome="refused") == 1
    durations = points(reader, "nentang.gateway.call.duration")
    assert sum(p.count for a, p in durations if a.get("service") == "dan-cu-xroad") == 2

    # The other way: the gateway calls a data service the province publishes.
    key = ECKey.generate_key("P-256", parameters={"kid": "lgsp-1"})
    issuer = "https://lgsp.example.gov.vn"
    consumer = "VN/GOV/000.00.00.G22/CSDL-DOANH-NGHIEP"
    trust = await client.put(f"/api/v1/tenants/{where.province}/gateway-trust",
                             headers=where.admin.headers, json={
                                 "issuer": issuer, "audience": "nentang",
                                 "keys": {"keys": [key.as_dict(private=False)]}})
    assert trust.status_code == 200, trust.text
    published = await client.post(f"/api/v1/tenants/{where.province}/data-services",
                                  headers=where.admin.headers, json={
                                      "name": "ho-kinh-doanh", "title": "Hộ kinh doanh",
                                      "source": "cases", "form": "ho-kinh-doanh",
                                      "fields": ["ten_ho_kinh_doanh"], "filters": [],
                                      "consumers": [consumer]})
    assert published.status_code == 201, published.text
    now = int(time.time())
    token = jwt.encode({"alg": "ES256", "kid": key.kid},
                       {"iss": issuer, "aud": "nentang", "iat": now, "exp": now + 300,
                        "client": consumer, "jti": str(uuid.uuid4())}, key)
    service = f"/gateway/{where.province}/services/ho-kinh-doanh"
    ok = await client.get(service, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200, ok.text
    assert (await client.get(service)).status_code == 401

    calls = points(reader, "nentang.gateway.calls")
    assert total(calls, direction="inbound", service="ho-kinh-doanh", outcome="ok") >= 1
    assert total(calls, direction="inbound", outcome="refused") >= 1


# ---- exporters -----------------------------------------------------------------------------------


async def test_prometheus_serves_the_metrics_for_scraping(
        client: httpx.AsyncClient, platform: Platform, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # The test extra installs the exporter: without it this test fails, never skips.
    import opentelemetry.exporter.prometheus  # noqa: F401
    port = free_port()
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(port))
    metrics.shutdown_metrics()
    try:
        assert metrics.setup_metrics("api") is not None
        assert metrics.setup_metrics("api") is metrics.setup_metrics("worker")  # once a process
        where = await office(platform, client)
        await read(client, where, (await submit(client, where))["case"], where.officer)
        metrics.delivery("delivered", "webhook")
        metrics.gateway_call("outbound", "dan-cu", "timeout", time.perf_counter())
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        text = scraped.text
        for name in ("http_server_request_duration_seconds_bucket", "nentang_requests_total",
                     "nentang_deliveries_total", "nentang_gateway_calls_total",
                     "nentang_gateway_call_duration_seconds_count"):
            assert name in text, name
        assert 'http_route="/api/v1/tenants/{tenant}/cases/{case_id}"' in text
        assert f'tenant="{where.province}"' in text

        # A second process on the same port (serve --workers 2) goes on without it.
        metrics.shutdown_metrics()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(taken.getsockname()[1]))
            with caplog.at_level(logging.ERROR, logger="nentang.telemetry"):
                assert metrics.setup_metrics("api") is None
            assert "cannot serve Prometheus" in caplog.text
    finally:
        metrics.shutdown_metrics()


async def test_nothing_is_recorded_without_an_exporter(
        client: httpx.AsyncClient, platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_METRICS_EXPORTER", raising=False)
    metrics.shutdown_metrics()
    try:
        assert metrics.setup_metrics("api") is None
        assert metrics.instruments() is None
        metrics.delivery("delivered", "webhook")  # a no-op
        metrics.signature("signed", "pkcs12")
        await metrics.observe_backlog(platform.app.state.db)
        assert (await client.get("/healthz")).status_code == 200
    finally:
        metrics.shutdown_metrics()


def test_the_resource_names_the_component() -> None:
    found = InMemoryMetricReader()
    try:
        provider = metrics.setup_metrics("worker", readers=[found])
        assert provider is not None
        metrics.delivery("dead", "xroad")
        data = found.get_metrics_data()
        assert data is not None
        attributes = data.resource_metrics[0].resource.attributes
        assert (attributes["service.name"], attributes["nentang.component"]) == (
            "nentang", "worker")
        assert total(points(found, "nentang.deliveries"), outcome="dead") == 1
    finally:
        metrics.shutdown_metrics()


def test_the_operator_names_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "nentang-hanoi")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    resource = service_resource(**{"nentang.component": "api"})
    assert (resource.attributes["service.name"], resource.attributes["nentang.component"],
            resource.attributes["deployment.environment"]) == (
        "nentang-hanoi", "api", "staging")


def test_the_province_level_path() -> None:
    assert metrics.level_path("/a/") == "/a/"
    assert metrics.level_path("/a/b/") == "/a/b/"
    assert metrics.level_path("/a/b/c/d/") == "/a/b/"
