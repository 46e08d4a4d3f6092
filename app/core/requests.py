"""Per-request context: the request id, the tenant acted on, and the access log.

A pure ASGI middleware gives every response an ``X-Request-ID`` (the caller's, when it is a
sane token, otherwise a new one), keeps it and the tenant code in context variables for the
structured logs, and turns an unhandled exception into a problem document that carries the
request id and never a stack trace.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# For responses that carry a secret shown once (a password, a client secret, a token).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_request_id: ContextVar[str | None] = ContextVar("nentang_request_id", default=None)
_tenant_code: ContextVar[str | None] = ContextVar("nentang_tenant", default=None)

access_logger = logging.getLogger("nentang.access")
error_logger = logging.getLogger("nentang.errors")


def current_request_id() -> str | None:
    return _request_id.get()


def current_tenant_code() -> str | None:
    return _tenant_code.get()


def set_tenant_code(code: str) -> None:
    _tenant_code.set(code)


_INTERNAL_ERROR_VI = "Lỗi hệ thống"


def _internal_error_body(request_id: str) -> bytes:
    return json.dumps({
        "type": "/problems/internal-error",
        "title": _INTERNAL_ERROR_VI,
        "status": 500,
        "code": "internal-error",
        "detail": "The error was logged; quote the request id when reporting it.",
        "request_id": request_id,
    }, ensure_ascii=False).encode()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        rid_token = _request_id.set(request_id)
        tenant_token = _tenant_code.set(None)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_logger.exception("unhandled error")
            if response_started:
                raise
            status = 500
            await send_with_id({
                "type": "http.response.start", "status": 500,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-language", b"vi")],
            })
            await send({"type": "http.response.body", "body": _internal_error_body(request_id)})
        finally:
            access_logger.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            _tenant_code.reset(tenant_token)
            _request_id.reset(rid_token)
