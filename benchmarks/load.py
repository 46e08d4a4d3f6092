"""A small closed-loop HTTP/1.1 load generator on raw asyncio streams.

Written here rather than taken from a package so the benchmark needs nothing beyond the
standard library, and so its own cost stays small and visible: each of ``connections``
keep-alive connections sends one request, reads the whole response and sends the next,
until ``duration`` seconds pass (or ``requests`` have been sent). Connections are opened
before the clock starts, so connection set-up is not measured. Every response's latency is
kept, so percentiles are exact rather than estimated from buckets.

Closed loop means the offered load adapts to the server (no coordinated-omission
correction): the figures are throughput at a fixed concurrency and the latencies that go
with it, which is what comparing two servers needs.

Command line::

    python -m benchmarks.load http://127.0.0.1:8000/bare/B1 -c 32 -d 10
    python -m benchmarks.load http://127.0.0.1:8000/bare -X POST \\
        --body '{"code": "C{n}", "name": "x"}' -H 'Authorization: Bearer ...'

In ``--body``, ``{n}`` becomes a number unique within the process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

BodyFactory = Callable[[], bytes]
_SEQUENCE = itertools.count(1)
_RUN_TAG = secrets.token_hex(3).upper()


def unique_number() -> str:
    """A token unique within this process and very likely across runs (for insert keys)."""
    return f"{_RUN_TAG}{next(_SEQUENCE):07d}"


def template_body(template: str) -> BodyFactory:
    """A body factory that fills ``{n}`` in ``template`` with :func:`unique_number`."""
    return lambda: template.replace("{n}", unique_number()).encode()


@dataclass(frozen=True)
class Target:
    """What every request of a run sends."""

    host: str
    port: int
    method: str = "GET"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: BodyFactory | None = None
    content_type: str = "application/json"

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port/path URLs are supported, not {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname, parts.port or 80, path=path, **kwargs)  # type: ignore[arg-type]

    def encode(self) -> bytes:
        body = self.body() if self.body is not None else b""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body is not None:
            lines += [f"Content-Type: {self.content_type}", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpError(Exception):
    """The server's reply was not HTTP/1.1 we understand, or it closed the connection."""


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole response, in turn."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``; return the status and body. Raises :class:`HttpError`."""
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = await self._chunked()
            else:
                body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError,
                ValueError, ConnectionError) as exc:
            raise HttpError(f"bad or missing response: {exc!r}") from exc
        if headers.get("connection", "").lower() == "close":
            raise HttpError("the server closed the connection")
        return status, body

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(chunk[:-2])


@dataclass
class Result:
    """One run's outcome. Latencies are in milliseconds; ``rps`` counts 2xx responses."""

    label: str
    connections: int
    elapsed_s: float
    ok: int
    errors: int
    statuses: dict[str, int]
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    client_cpu_s: float
    first_error: str | None = None

    def line(self) -> str:
        return (f"{self.label}: {self.rps:,.0f} req/s  p50 {self.p50_ms:.1f} ms  "
                f"p99 {self.p99_ms:.1f} ms  ok {self.ok}  errors {self.errors}"
                + (f"  (first: {self.first_error})" if self.first_error else ""))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when it is empty)."""
    if not ordered:
        return 0.0
    rank = max(1, round(fraction * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


async def run(
    target: Target, *, connections: int = 32, duration: float = 10.0,
    requests: int | None = None, request_timeout: float = 10.0, label: str = "",
) -> Result:
    """Load ``target`` from ``connections`` connections for ``duration`` seconds at most."""
    pool = await asyncio.gather(
        *(Connection.open(target.host, target.port) for _ in range(connections)))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    budget = itertools.count() if requests is None else iter(range(requests))
    started = time.perf_counter()
    cpu_started = time.process_time()
    deadline = started + duration

    async def worker(conn: Connection | None) -> None:
        while time.perf_counter() < deadline and next(budget, None) is not None:
            request = target.encode()
            sent = time.perf_counter()
            try:
                if conn is None:
                    conn = await Connection.open(target.host, target.port)
                async with asyncio.timeout(request_timeout):
                    status, reply = await conn.exchange(request)
            except (HttpError, OSError, TimeoutError) as exc:
                statuses["failed"] += 1
                failures.append(repr(exc))
                if conn is not None:
                    conn.close()
                conn = None
                continue
            latencies.append((time.perf_counter() - sent) * 1000)
            statuses[str(status)] += 1
            if not 200 <= status < 300 and len(failures) < 5:
                failures.append(f"HTTP {status}: {reply.decode(errors='replace')[:200]}")
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker(conn) for conn in pool))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    latencies.sort()
    return Result(
        label=label or f"{target.method} {target.path}", connections=connections,
        elapsed_s=round(elapsed, 3), ok=ok, errors=sum(statuses.values()) - ok,
        statuses=dict(statuses), rps=ok / elapsed if elapsed else 0.0,
        p50_ms=percentile(latencies, 0.50), p90_ms=percentile(latencies, 0.90),
        p99_ms=percentile(latencies, 0.99), max_ms=latencies[-1] if latencies else 0.0,
        mean_ms=sum(latencies) / len(latencies) if latencies else 0.0,
        client_cpu_s=round(cpu, 3), first_error=failures[0] if failures else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="http://host:port/path")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds (a cap)")
    parser.add_argument("-n", "--requests", type=int, help="stop after this many requests")
    parser.add_argument("-X", "--method", default="GET")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--body", help="request body; {n} becomes a unique number")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds of unmeasured load")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    target = Target.from_url(
        args.url, method=args.method.upper(),
        headers={k.strip(): v.strip() for k, v in headers.items()},
        body=template_body(args.body) if args.body is not None else None)

    async def go() -> Result:
        if args.warmup > 0:
            await run(target, connections=args.connections, duration=args.warmup)
        return await run(target, connections=args.connections, duration=args.duration,
                         requests=args.requests)

    result = asyncio.run(go())
    print(json.dumps(result.as_dict(), indent=1) if args.json else result.line())
    return 0 if result.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
