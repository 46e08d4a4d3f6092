from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

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
