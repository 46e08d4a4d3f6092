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

from tests.http_servers import serve


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
        self.base = ""

    def answer(self, *answers: Answer | int) -> None:
        with self._lock:
            self.script.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def url(self, path: str = "/hook") -> str:
        return self.base + path

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]

    def _next(self) -> Answer:
        with self._lock:
            return self.script.popleft() if self.script else Answer()

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def _respond(self, path: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        self._record(Received(path, headers, body))
        answer = self._next()
        if answer.delay:
            time.sleep(answer.delay)
        return answer.status, answer.headers, b""

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        with serve(self._respond) as base:
            self.base = base
            yield self
