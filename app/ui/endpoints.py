"""Serving the web UI: the page shell, its static files and the message catalogues.

None of these routes is part of the public API (they are left out of the OpenAPI document).
Every answer carries the UI's security headers (see :data:`SECURITY_HEADERS`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ui import catalogues

STATIC_DIR = Path(__file__).with_name("static")
PREFIX = "/admin"

#: Scripts, styles, images and API calls only from the service itself; no inline script or
#: style, no plug-ins, no framing, forms post only here.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
_SHELL_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
@router.get("/")
@router.get("/callback")
async def shell() -> FileResponse:
    """The single page; the screens are chosen by the URL's fragment (``#/<unit>/...``)."""
    return FileResponse(STATIC_DIR / "index.html", headers=_SHELL_HEADERS)


@router.get("/i18n/{language}.json")
async def messages(language: str) -> JSONResponse:
    try:
        body: dict[str, Any] = catalogues.catalogue(language)
    except KeyError:
        raise HTTPException(404, "No such language.") from None
    return JSONResponse(body, headers=_SHELL_HEADERS)


class _SecurityHeaders:
    """Adds the UI's headers to every answer of the wrapped app (the static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in _SHELL_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Serve the UI at ``/admin`` (the shell, ``/admin/static/...``, ``/admin/i18n/...``)."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", _SecurityHeaders(StaticFiles(directory=STATIC_DIR)),
              name="admin-static")
