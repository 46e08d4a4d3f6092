"""A data-sharing gateway for tests, over real HTTP on loopback: an X-Road security server
(the message protocol for REST) and a provincial LGSP behind an access-key token exchange,
with the faults real gateways produce.

X-Road: ``POST /r1/{instance}/{class}/{member}/{subsystem}/{service}``, each part
percent-decoded on its own. A request without a well-formed ``X-Road-Client``, or from a
client the service does not allow, is refused with ``X-Road-Error: Client.*``; a service it
does not know with ``Server.ServerProxy.UnknownService``. Answers carry ``X-Road-Id`` (echoed),
``X-Road-Request-Id`` and ``X-Road-Request-Hash``.

Token gateway: ``POST /token`` ``{"accessKey", "secretKey"}`` → ``{"accessToken",
"expiresIn"}``; ``POST /lgsp/{service}`` wants ``Authorization: Bearer``: 401 when the token
is unknown or revoked (:meth:`GatewaySimulator.revoke_tokens`), 403 for a key the service
does not allow.

Faults, scripted per request in arrival order (:meth:`fault`): ``"5xx"`` (the provider
fails, no X-Road error), ``"gateway"`` (``X-Road-Error: Server.ClientProxy.NetworkError``),
``"429"`` (with ``Retry-After``), ``"slow"`` (answers after ``slow_seconds``), ``"drop"``
(reads the body, records it, then closes the connection without answering: the sender
cannot know it arrived, and sends it again), ``"duplicate"`` (records it and answers 503,
so the same message comes again). :attr:`down` refuses every connection's request with a
503 from the gateway itself.

What arrived is in :attr:`received` (``Arrival``); :meth:`unique_events` drops repeats by
event id, as a receiver must.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.http_servers import Dropped, serve

ACCESS_KEY, SECRET_KEY = "lgsp-access-key", "lgsp-secret-key"
CLIENT = ("VN", "GOV", "000.00.00.H29", "NENTANG")
SERVICE = ("VN", "GOV", "000.00.00.G22", "LGSP", "nhan-su-kien")


@dataclass(frozen=True)
class Arrival:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    fault: str | None

    @property
    def event(self) -> str:
        return str(self.body.get("id"))


@dataclass
class GatewaySimulator:
    allowed_clients: set[tuple[str, ...]] = field(default_factory=lambda: {CLIENT})
    services: set[tuple[str, ...]] = field(default_factory=lambda: {SERVICE})
    token_lifetime: int = 300
    slow_seconds: float = 2.0
    down: bool = False
    received: list[Arrival] = field(default_factory=list)
    tokens_issued: int = 0
    url: str = ""
    # Cases whose events the service refuses for good (X-Road-Error: Client.AccessDenied).
    refused_cases: set[str] = field(default_factory=set)
    delay: float = 0.0  # seconds before every answer
    # The register a lookup service answers from: citizen-ID number -> record.
    people: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._faults: deque[str] = deque()
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    def fault(self, *kinds: str) -> None:
        with self._lock:
            self._faults.extend(kinds)

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def unique_events(self) -> list[Arrival]:
        seen: set[str] = set()
        unique = []
        for arrival in self.received:
            if arrival.fault not in ("5xx", "gateway", "429", "refused") and (
                    arrival.event not in seen):
                seen.add(arrival.event)
                unique.append(arrival)
        return unique

    # ---- the protocol ------------------------------------------------------------------------

    def _answer(self, status: int, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body if body is not None else {}).encode()
        return status, {"content-type": "application/json", **(headers or {})}, data

    def _xroad_error(self, status: int, code: str) -> tuple[int, dict[str, str], bytes]:
        return self._answer(status, {"type": code, "message": code}, {"X-Road-Error": code})

    def _respond(self, path: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.down:
            return self._xroad_error(503, "Server.ClientProxy.NetworkError")
        if path == "/token":
            request = json.loads(body or b"{}")
            if (request.get("accessKey"), request.get("secretKey")) != (ACCESS_KEY, SECRET_KEY):
                return self._answer(401, {"error": "invalid_credentials"})
            token = secrets.token_urlsafe(12)
            with self._lock:
                self._tokens.add(token)
                self.tokens_issued += 1
            return self._answer(200, {"accessToken": token, "expiresIn": self.token_lifetime})
        if path.startswith("/lgsp/"):
            token = headers.get("authorization", "").removeprefix("Bearer ")
            with self._lock:
                known = token in self._tokens
            if not known:
                return self._answer(401, {"error": "invalid_token"})
            if path == "/lgsp/forbidden":
                return self._answer(403, {"error": "forbidden"})
            return self._deliver(path, headers, body, {})
        path, _, query = path.partition("?")
        if path.startswith("/r1/"):
            parts = tuple(unquote(p) for p in path[len("/r1/"):].split("/"))
            client = tuple(unquote(p) for p in headers.get("x-road-client", "").split("/"))
            if len(client) != 4 or not all(client):
                return self._xroad_error(400, "Client.InvalidRequest.MissingClient")
            if parts not in self.services:
                return self._xroad_error(500, "Server.ServerProxy.UnknownService")
            if client not in self.allowed_clients:
                return self._xroad_error(403, "Client.AccessDenied")
            if not body:  # a GET: a lookup
                return self._lookup(query)
            request_id = str(uuid.uuid4())
            return self._deliver(path, headers, body, {
                "X-Road-Id": headers.get("x-road-id", ""), "X-Road-Request-Id": request_id,
                "X-Road-Request-Hash": base64.b64encode(hashlib.sha512(body).digest()).decode()})
        return self._answer(404, {"error": "not_found"})

    def _lookup(self, query: str) -> tuple[int, dict[str, str], bytes]:
        """A register behind the gateway: a GET with ``?so_dinh_danh=``."""
        from urllib.parse import parse_qs

        number = parse_qs(query).get("so_dinh_danh", [""])[0]
        person = self.people.get(number)
        if person is None:
            return self._answer(404, {"error": "not found"})
        return self._answer(200, person)

    def _deliver(self, path: str, headers: dict[str, str], body: bytes,
                 extra: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        payload = json.loads(body)
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            if payload.get("case", {}).get("id") in self.refused_cases:
                fault = "refused"
            self.received.append(Arrival(path, headers, payload, fault))
        if fault == "refused":
            return self._xroad_error(403, "Client.AccessDenied")
        if fault == "5xx":
            return self._answer(500, {"error": "provider failed"}, extra)
        if fault == "gateway":
            return self._xroad_error(502, "Server.ClientProxy.NetworkError")
        if fault == "429":
            return self._answer(429, {"error": "slow down"}, {"Retry-After": "1", **extra})
        if fault == "slow":
            time.sleep(self.slow_seconds)
        if fault == "drop":
            raise Dropped
        if fault == "duplicate":
            return self._answer(503, {"error": "try again"}, extra)
        return self._answer(200, {"received": True}, extra)

    @contextmanager
    def running(self, tls: ssl.SSLContext | None = None) -> Iterator[GatewaySimulator]:
        """``tls``: serve HTTPS (a security server demanding client certificates)."""
        with serve(self._respond, tls) as base:
            self.url = base
            yield self
