"""A receiving system for the delivery benchmark, in its own process (uvicorn, so that it is
not the bottleneck): it answers every POST with 200 at once and records, per message, the
wall-clock moment it arrived and the event's id and ``occurred_at``. ``GET /dump`` returns
the records; ``POST /reset`` clears them.

    .venv/bin/python -m uvicorn benchmarks.receiver:app --port 8099 --no-access-log
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

RECORDS: list[tuple[float, str, str]] = []


async def _answer(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        await _answer(send, json.dumps(RECORDS).encode())
        return
    data = b""
    while True:
        message = await receive()
        data += message.get("body", b"")
        if not message.get("more_body"):
            break
    arrived = time.time()
    if scope["path"] == "/reset":
        RECORDS.clear()
    else:
        try:
            event = json.loads(data)
            RECORDS.append((arrived, str(event.get("id")), str(event.get("occurred_at"))))
        except ValueError:
            RECORDS.append((arrived, "", ""))
    await _answer(send, b'{"received":true}')
