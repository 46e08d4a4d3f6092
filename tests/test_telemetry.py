from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.core.logging import JsonFormatter
from tests.conftest import Backend
from tests.platform import Platform


async def test_request_span_carries_tenant_and_database_spans_nest_under_it(
    platform: Platform, client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    province, admin = await platform.province_with_admin()
    spans.clear()
    response = await client.get(f"/api/v1/tenants/{province}", headers=admin.headers)
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    servers = [s for s in finished if s.kind == SpanKind.SERVER]
    assert len(servers) == 1
    server = servers[0]
    assert server.attributes is not None
    assert server.attributes["nentang.tenant"] == province
    database = [s for s in finished if (s.attributes and "db.system" in s.attributes)
                or (s.attributes and "db.system.name" in s.attributes)]
    assert database, [s.name for s in finished]
    assert all(s.context.trace_id == server.context.trace_id for s in database)


async def test_spans_are_not_recorded_when_nothing_exports_them(backend: Backend) -> None:
    from opentelemetry import trace

    from app.main import create_app

    app = create_app(backend.settings)
    tracer = app.state.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("probe") as span:
        assert not span.is_recording()
        assert trace.get_current_span() is span
    await app.state.db.dispose()


class _Lines(logging.Handler):
    """Formats each record as it is emitted (inside the request, as a stream handler does)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@contextmanager
def access_lines() -> Iterator[_Lines]:
    access = logging.getLogger("nentang.access")
    handler, level = _Lines(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        access.removeHandler(handler)
        access.setLevel(level)


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_a_requests_log_lines_carry_the_trace_id_of_its_traceparent(
        client: httpx.AsyncClient) -> None:
    with access_lines() as handler:
        answer = await client.get("/api/v1/me", headers={"traceparent": TRACEPARENT})
    assert answer.status_code == 401
    [line] = [li for li in handler.lines if li["path"] == "/api/v1/me"]
    assert line["trace_id"] == TRACE_ID
    assert len(line["span_id"]) == 16 and line["span_id"] != "00f067aa0ba902b7"
    assert line["request_id"] == answer.headers["x-request-id"]


async def test_trace_ids_are_logged_even_when_no_trace_is_exported(backend: Backend) -> None:
    """The ALWAYS_OFF sampler still gives each request a valid (unsampled) span context."""
    from app.main import create_app

    app = create_app(backend.settings)
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://nentang.test") as http:
            with access_lines() as handler:
                await http.get("/api/v1/me", headers={"traceparent": TRACEPARENT})
                await http.get("/api/v1/me")
        given, fresh = handler.lines
        assert given["trace_id"] == TRACE_ID
        assert len(fresh["trace_id"]) == 32 and fresh["trace_id"] not in (TRACE_ID, "0" * 32)
    finally:
        await app.state.db.dispose()


def test_a_line_outside_any_span_has_no_trace_id() -> None:
    record = logging.makeLogRecord({"msg": "plain", "levelname": "INFO", "name": "x"})
    line = json.loads(JsonFormatter().format(record))
    assert "trace_id" not in line and "span_id" not in line
