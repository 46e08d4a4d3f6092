"""A small HTTP proxy in front of the live service that produces the failures an SDK must
survive: an answer lost after the service acted (the client sees 502), an overloaded gateway
(503 with ``Retry-After``), a timeout (408), rate limiting (429) and a dropped connection.

Requests pass through to the real service unless a rule matches. Every request is recorded
(method, path, headers, arrival time) so tests can check what the SDK sent on each attempt.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
              "content-encoding"}


@dataclass
class Fault:
    """Answer matching requests with ``status`` (and ``headers``) instead of the service's
    answer, ``times`` times. With ``after_forwarding`` the request reaches the service first
    (so it acts) and only its answer is lost; ``drop`` closes the connection unanswered."""

    method: str
    path: str
    status: int = 503
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    after_forwarding: bool = False
    drop: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.times > 0 and method == self.method
                and re.fullmatch(self.path, path) is not None)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float
    answered: int | None


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=30, trust_env=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail(self, method: str, path: str, **options: object) -> Fault:
        fault = Fault(method, path, **options)  # type: ignore[arg-type]
        with self._lock:
            self.faults.append(fault)
        return fault

    def requests_to(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and re.fullmatch(path, s.path)]

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                content = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in HOP_BY_HOP}
                fault = proxy._take(self.command, path)
                recorded = False

                def record(answered: int | None) -> None:
                    """Before the answer leaves: a client that has its answer finds it seen."""
                    nonlocal recorded
                    with proxy._lock:
                        proxy.seen.append(Seen(self.command, path, headers, time.monotonic(),
                                               answered))
                    recorded = True

                try:
                    if fault is not None and fault.drop:
                        self.close_connection = True
                        record(None)
                        return
                    upstream = None
                    if fault is None or fault.after_forwarding:
                        upstream = proxy._http.request(self.command, self.path,
                                                       headers=headers, content=content)
                    if fault is not None:
                        record(fault.status)
                        self._send(fault.status, fault.headers, b'{"title": "injected"}',
                                   "application/problem+json")
                    elif upstream is not None:
                        record(upstream.status_code)
                        kept = {k: v for k, v in upstream.headers.items()
                                if k.lower() not in HOP_BY_HOP and k.lower() != "content-type"}
                        self._send(upstream.status_code, kept, upstream.content,
                                   upstream.headers.get("content-type", ""))
                finally:
                    if not recorded:
                        record(None)

            def _send(self, status: int, headers: dict[str, str], content: bytes,
                      content_type: str) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._http.close()


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream) as proxy:
        yield proxy
