"""Guards on request bodies, applied before any endpoint sees them.

For ``/api/`` requests that carry a body:

* a body larger than ``max_body_bytes`` gets a 413 — at once when ``Content-Length`` says
  so, otherwise as soon as the stream passes the limit — and is never buffered past it;
* a media type the API does not take gets a 415 naming the ones it does;
* JSON nested deeper than :data:`MAX_JSON_DEPTH` gets a 400 before it is parsed, since
  parsing and validating such a document recurses once per level.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.problems import Problem, problem_response

MAX_JSON_DEPTH = 64
ACCEPTED_MEDIA_TYPES = ("application/json", "text/csv", "multipart/form-data")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# Uploads stream past this middleware: their endpoint enforces its own limit on the content.
STREAMED_UPLOADS = re.compile(r"^/api/v1/tenants/[^/]+/submissions/[^/]+/attachments$")
# A JSON string or a bracket: brackets inside strings do not nest anything.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for token in _JSON_TOKENS.finditer(body):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


def _media_type(headers: dict[bytes, bytes]) -> str:
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json"))


async def _problem(scope: Scope, receive: Receive, send: Send, status: int, code: str,
                   title_vi: str, title_en: str, detail: str) -> None:
    problem = Problem(status, code, title_vi, title_en, detail=detail)
    await problem_response(Request(scope), problem)(scope, receive, send)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") not in _WITH_BODY
                or not scope.get("path", "").startswith("/api/")
                or STREAMED_UPLOADS.match(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            await self._too_large(scope, receive, send)
            return
        media_type = _media_type(headers)
        if body and not (_is_json(media_type) or media_type in ACCEPTED_MEDIA_TYPES):
            await _problem(scope, receive, send, 415, "unsupported-media-type",
                           "Định dạng không được hỗ trợ", "Unsupported media type",
                           f"Send the body as application/json (got "
                           f"'{media_type[:100] or 'no Content-Type'}').")
            return
        if _is_json(media_type) and json_depth_exceeds(body):
            await _problem(scope, receive, send, 400, "too-deep", "Dữ liệu lồng nhau quá sâu",
                           "Nested too deeply", f"JSON may nest at most {MAX_JSON_DEPTH} levels.")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (the rest is not kept)."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _problem(scope, receive, send, 413, "body-too-large", "Yêu cầu quá lớn",
                       "Request too large", f"The body may be at most {self.max_body_bytes} bytes.")


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
