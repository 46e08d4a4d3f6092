"""A small HTTP/1.1 load balancer on loopback, standing in for a Kubernetes Service and its
ingress in the cluster proof (:mod:`benchmarks.cluster`).

It does what they do, and no more, so a result measured through it carries over:

* **endpoints follow readiness**: each backend's ``/readyz`` is polled (every
  ``interval`` seconds, like a readiness probe) and only ready backends get requests; as
  with Kubernetes' ``failureThreshold`` (3 by default), a backend leaves only after three
  failed probes in a row, so one slow answer on a busy node does not empty the Service;
* **draining**: :meth:`Balancer.drain` takes a backend out of rotation at once, as the
  endpoint controller does when a pod starts terminating (the chart's ``preStop`` pause
  gives that removal time to spread before SIGTERM arrives); requests already sent to it
  carry on;
* **retry on connect only**: a backend that refuses the connection is marked not ready and
  the request goes to the next one, as nginx's ``proxy_next_upstream error`` does. A request
  that reached a backend is never sent again: if the backend fails it after that, the client
  gets a 502 and the run counts a failure.

Each request gets its own upstream connection (``Connection: close``), so no request is ever
written to a keep-alive connection the backend is about to close. Chunked request bodies are
not supported (the load sends ``Content-Length``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

import httpx

HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
              b"upgrade"}
BAD_GATEWAY = (b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n"
               b"content-length: 11\r\nconnection: close\r\n\r\nbad gateway")
NO_BACKEND = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
              b"content-length: 10\r\nconnection: close\r\n\r\nno backend")


@dataclass
class Backend:
    name: str
    host: str
    port: int
    ready: bool = False
    drained: bool = False
    failed_probes: int = 0


@dataclass
class Counts:
    """What the balancer saw; ``connect_retries`` are requests moved to another backend
    because the first refused the connection (never sent twice)."""

    proxied: int = 0
    connect_retries: int = 0
    bad_gateway: int = 0
    no_backend: int = 0
    failed_probes: int = 0
    per_backend: dict[str, int] = field(default_factory=dict)


class Balancer:
    def __init__(self, backends: dict[str, tuple[str, int]], *, interval: float = 0.2,
                 failure_threshold: int = 3) -> None:
        self.backends = {name: Backend(name, host, port)
                         for name, (host, port) in backends.items()}
        self.interval = interval
        self.failure_threshold = failure_threshold
        self.counts = Counts()
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._probe: asyncio.Task[None] | None = None
        self._probed = asyncio.Event()
        self._clients: set[asyncio.StreamWriter] = set()

    # --- control ----------------------------------------------------------------------------

    def drain(self, name: str) -> None:
        self.backends[name].drained = True

    def restore(self, name: str) -> None:
        self.backends[name].drained = False

    def replaced(self, name: str) -> None:
        """A new process took ``name``'s place: not ready until a probe of its own passes
        (a new pod is a new endpoint)."""
        backend = self.backends[name]
        backend.ready, backend.failed_probes = False, 0

    def in_rotation(self) -> list[Backend]:
        return [b for b in self.backends.values() if b.ready and not b.drained]

    async def until_ready(self, name: str) -> None:
        """Wait for the readiness probe to see ``name`` ready (bound it with a timeout)."""
        while not self.backends[name].ready:
            self._probed.clear()
            await self._probed.wait()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, backlog=1024)
        self._probe = asyncio.create_task(self._probe_forever())
        await self._probe_all()
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):  # idle keep-alive connections
                writer.close()
            await self._server.wait_closed()
            await asyncio.sleep(0)  # let the handlers see their connections closed

    # --- readiness --------------------------------------------------------------------------

    async def _probe_all(self, http: httpx.AsyncClient | None = None) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if http is None:
                http = await stack.enter_async_context(
                    httpx.AsyncClient(timeout=2.0, trust_env=False))
            for backend in self.backends.values():
                try:
                    answer = await http.get(f"http://{backend.host}:{backend.port}/readyz")
                    ok = answer.status_code == 200
                except httpx.ConnectError:
                    backend.ready, backend.failed_probes = False, self.failure_threshold
                    continue
                except httpx.HTTPError:
                    ok = False
                if ok:
                    backend.ready, backend.failed_probes = True, 0
                else:
                    self.counts.failed_probes += 1
                    backend.failed_probes += 1
                    if backend.failed_probes >= self.failure_threshold:
                        backend.ready = False

    async def _probe_forever(self) -> None:
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            while True:
                await self._probe_all(http)
                self._probed.set()
                await asyncio.sleep(self.interval)

    # --- proxying ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, headers = _parse(head)
                length = int(headers.get(b"content-length", b"0"))
                body = await reader.readexactly(length) if length else b""
                request = _rebuild(request_line, headers, body)
                keep_alive = headers.get(b"connection", b"").lower() != b"close"
                closes = await self._forward(request, writer)
                if closes or not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _forward(self, request: bytes, client: asyncio.StreamWriter) -> bool:
        """Send ``request`` to a ready backend and relay its answer; returns whether the
        client connection must close afterwards."""
        tried: set[str] = set()
        while True:
            choices = [b for b in self.in_rotation() if b.name not in tried]
            if not choices:
                self.counts.no_backend += 1
                client.write(NO_BACKEND)
                await client.drain()
                return True
            backend = choices[next(self._turn) % len(choices)]
            tried.add(backend.name)
            try:
                up_reader, up_writer = await asyncio.open_connection(backend.host, backend.port)
            except OSError:
                backend.ready = False  # refused: not listening (any more); next backend
                self.counts.connect_retries += 1
                continue
            break
        self.counts.proxied += 1
        self.counts.per_backend[backend.name] = self.counts.per_backend.get(backend.name, 0) + 1
        try:
            up_writer.write(request)
            await up_writer.drain()
            answer = await up_reader.read()  # the backend closes after its answer
        except ConnectionError:
            answer = b""
        finally:
            up_writer.close()
            with contextlib.suppress(ConnectionError):
                await up_writer.wait_closed()
        if not answer.startswith(b"HTTP/"):
            self.counts.bad_gateway += 1
            client.write(BAD_GATEWAY)
            await client.drain()
            return True
        client.write(_keep_alive(answer))
        await client.drain()
        return False


def _parse(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _rebuild(request_line: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes:
    kept = [b"%s: %s" % (k, v) for k, v in headers.items() if k not in HOP_BY_HOP]
    return b"\r\n".join([request_line, *kept, b"connection: close", b"", b""]) + body


def _keep_alive(answer: bytes) -> bytes:
    """The backend's answer with its ``connection: close`` dropped, so the client may reuse
    its connection to the balancer (the answer is framed by its content-length)."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n")
             if line.split(b":", 1)[0].strip().lower() not in HOP_BY_HOP]
    return b"\r\n".join(lines) + sep + body
