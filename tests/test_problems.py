"""Every error is an RFC 9457 problem document, and every response carries a request id."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from app.core.logging import JsonFormatter
from app.main import create_app
from tests.conftest import Backend
from tests.platform import Platform

PROBLEM = "application/problem+json"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404 and body["type"].startswith("/problems/")
    assert body["request_id"] == response.headers["x-request-id"]


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert "allow" in response.headers


async def test_validation_errors_carry_json_pointers(platform: Platform,
                                                     client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/tenants", headers=platform.admin.headers, json={
        "code": "ok1", "name": "", "kind": "village", "parent": "BNV", "extra": 1})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    pointers = sorted(e["pointer"] for e in response.json()["errors"])
    assert pointers == ["/code", "/extra", "/kind", "/name"]


async def test_malformed_json_is_a_problem_not_a_crash(platform: Platform,
                                                       client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/tenants", content=b"{not json",
                                 headers={**platform.admin.headers,
                                          "content-type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_query_parameter_errors_name_the_parameter(platform: Platform,
                                                         client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tenants/BNV/children", params={"limit": "0"},
                                headers=platform.admin.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0] == {**response.json()["errors"][0],
                                            "parameter": "limit", "in": "query"}


async def test_language_follows_accept_language(client: httpx.AsyncClient) -> None:
    vi = await client.get("/api/v1/tenants/BNV")
    en = await client.get("/api/v1/tenants/BNV", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert vi.headers["content-language"] == "vi" and en.headers["content-language"] == "en"
    assert vi.json()["title"] != en.json()["title"]
    assert vi.json()["code"] == en.json()["code"] == "invalid-token"


async def test_unhandled_error_is_a_500_problem_without_a_stack_trace(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(backend.settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        with caplog.at_level(logging.ERROR):
            response = await http.get("/boom", headers={"X-Request-ID": "trace-me-42"})
    await app.state.db.dispose()
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "trace-me-42"
    assert response.json()["request_id"] == "trace-me-42"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert any("hunter2" in (r.exc_text or str(r.exc_info)) for r in caplog.records)


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
    assert len(unsafe.headers["x-request-id"]) == 32


def test_log_lines_are_json_with_request_id_and_tenant() -> None:
    from app.core import requests as ctx

    rid, tenant = ctx._request_id.set("rid-1"), ctx._tenant_code.set("HN")
    try:
        record = logging.makeLogRecord({"msg": "hello %s", "args": ("world",), "name": "x",
                                        "levelname": "INFO", "status": 201})
        line: dict[str, Any] = json.loads(JsonFormatter().format(record))
    finally:
        ctx._tenant_code.reset(tenant)
        ctx._request_id.reset(rid)
    assert line["message"] == "hello world"
    assert line["request_id"] == "rid-1" and line["tenant"] == "HN" and line["status"] == 201


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_readiness_fails_when_schema_is_behind(tmp_path: Any) -> None:
    from app.config import Settings

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
                        auto_migrate=False)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/readyz")
    await app.state.db.dispose()
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"].startswith("not migrated")


def _cursor(raw: str) -> str:
    import base64

    return base64.urlsafe_b64encode(raw.encode("utf-8", "surrogatepass")).decode().rstrip("=")


@pytest.mark.parametrize(("path", "cursor"), [
    ("audit", _cursor("[99999999999]")),
    ("audit", _cursor("[-1]")),
    ("audit", _cursor("[" * 5000 + "]" * 5000)),
    ("children", _cursor('["\\ud800"]')),
    ("children", _cursor('["a\\u0000b"]')),
    ("children", "A" * 5000),
    ("clients", _cursor('[true]')),
])
async def test_odd_cursors_are_422(platform: Platform, client: httpx.AsyncClient, path: str,
                                   cursor: str) -> None:
    response = await client.get(f"/api/v1/tenants/BNV/{path}", params={"cursor": cursor},
                                headers=platform.admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid-cursor"


@pytest.mark.parametrize("name", ["a\x00b", "bell\x07", "\ud800"])
async def test_control_characters_in_names_are_422(platform: Platform,
                                                   client: httpx.AsyncClient,
                                                   name: str) -> None:
    body = json.dumps({"code": "XOK1", "name": name, "kind": "province", "parent": "BNV"})
    response = await client.post("/api/v1/tenants", content=body.encode(),
                                 headers={**platform.admin.headers,
                                          "content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/name"]


async def test_malformed_path_code_is_422(platform: Platform, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tenants/%00", headers=platform.admin.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "tenant"


async def test_token_request_with_a_nul_client_id_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", content=b"grant_type=client_credentials"
                                 b"&client_id=ntc_a%00b&client_secret=x",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
