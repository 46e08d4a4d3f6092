"""A webhook receiver for tests: a real HTTP server on loopback that records every request and
answers from a script (status codes, headers such as Retry-After or Location, slow answers),
falling back to 204 when the script runs out."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def answer(self, *answers: Answer | int) -> None:
        with self._lock:
            self.script.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def url(self, path: str = "/hook") -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]

    def _next(self) -> Answer:
        with self._lock:
            return self.script.popleft() if self.script else Answer()

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver._record(Received(self.path, {k.lower(): v for k, v in
                                                      self.headers.items()}, body))
                answer = receiver._next()
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
