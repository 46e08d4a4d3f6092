"""A province's hook receiver as a small ASGI application (no web framework needed).

A workflow state may call a URL when a case enters or leaves it (``"on_enter": [{"type":
"webhook", "url": ...}]``). The platform then POSTs a signed, thin event (what happened and
where, never the case's data) and retries until it gets a 2xx. :class:`HookApp` is such a
receiver: it verifies each request, drops repeats, and calls your handler with a
:class:`HookContext` that reads the case through the API with the receiver's own permissions
and acts on it::

    app = HookApp(base_url="https://nentang.example.gov.vn", client_id="...",
                  client_secret="...", secrets=["whsec_..."])

    @app.on_enter("kiem_tra_tu_dong")
    async def check(ctx: HookContext) -> None:
        case = await ctx.case()
        ok = len(str(case.data.get("so_cccd", ""))) == 12
        await ctx.act("dat" if ok else "khong_dat", comment="Kiểm tra tự động")

Serve it with any ASGI server: ``uvicorn my_receiver:app``.

Answers, and why:

* anything but POST: 405; an unverifiable request: 401, its body never parsed;
* handled: 200; an event no handler wants: 204 (the platform stops sending it);
* the same ``webhook-id`` again once handled (a retry whose answer got lost): 200 at once;
  while it is still being handled: 409, so the platform tries again later;
* a handler that raises: 500, and a handler slower than ``timeout``: 503; the platform retries
  later, so a failure is never lost. Redelivery is safe because :meth:`HookContext.act` does
  nothing when the case has already moved on (the first attempt acted, or someone else did).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from nentang_sdk.client import AsyncClient
from nentang_sdk.errors import CaseChangedError, WebhookVerificationError
from nentang_sdk.models import Case, Signature
from nentang_sdk.webhooks import DEFAULT_TOLERANCE, HOOK_EVENT, Event, secret_key, verify

__all__ = ["Handler", "HookApp", "HookContext", "Reply"]

log = logging.getLogger("nentang_sdk.hooks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

Handler = Callable[["HookContext"], Awaitable[None]]
H = TypeVar("H", bound=Handler)

# A case that entered the hook's state this long after the event is on a later visit to it.
_SAME_VISIT = timedelta(seconds=1)


class HookContext:
    """What a handler gets: the verified :attr:`event`, the app's :attr:`client`, and the
    case the event is about, read and acted on with the receiver's own permissions."""

    def __init__(self, event: Event, client: AsyncClient) -> None:
        self.event = event
        self.client = client
        self._case: Case | None = None

    @property
    def tenant(self) -> str:
        """The code of the case's unit (API calls about the case go there)."""
        if not self.event.tenant:
            raise ValueError(f"event {self.event.id} ({self.event.type}) names no unit")
        return self.event.tenant

    @property
    def case_id(self) -> str:
        if not self.event.case_id:
            raise ValueError(f"event {self.event.id} ({self.event.type}) is not about a case")
        return self.event.case_id

    async def case(self, *, refresh: bool = False) -> Case:
        """The case as it is now (read once, then kept: :meth:`act` acts on this copy, so
        what you decided on is what the action applies to)."""
        if self._case is None or refresh:
            self._case = await self.client.cases.get(self.tenant, self.case_id)
        return self._case

    def moved_on(self, case: Case) -> bool:
        """Whether ``case`` is no longer where the event left it: in another state, or in the
        same state on a later visit (a loop). Acting then would act on the wrong step."""
        if case.state.name != self.event.state:
            return True
        return case.state_entered_at > self.event.timestamp + _SAME_VISIT

    async def act(self, action: str, *, fields: Mapping[str, Any] | None = None,
                  comment: str | None = None, seat: str | None = None
                  ) -> Case | Signature | None:
        """Take ``action`` on the case read by :meth:`case` (``If-Match`` its ETag).

        Returns None, having done nothing, if the case has moved on since the event (a
        redelivery after the first attempt acted, or an official acted first): for a hook
        that is success, not an error. If the case changed but is still where the event
        left it, :class:`~nentang_sdk.errors.CaseChangedError` propagates (500: the
        platform redelivers, and the handler decides again on a fresh read).
        """
        case = await self.case()
        if self.moved_on(case):
            log.info("event %s: case %s is now in %s; not acting (%s)", self.event.id,
                     case.id, case.state.name, action)
            return None
        try:
            return await self.client.cases.act(self.tenant, case, action, fields=fields,
                                               comment=comment, seat=seat)
        except CaseChangedError:
            fresh = await self.case(refresh=True)
            if self.moved_on(fresh):
                log.info("event %s: case %s moved on to %s meanwhile; not acting (%s)",
                         self.event.id, fresh.id, fresh.state.name, action)
                return None
            raise


@dataclass(frozen=True)
class _Route:
    handler: Handler
    type: str
    when: str | None = None
    state: str | None = None
    workflow: str | None = None

    def wants(self, event: Event) -> bool:
        if self.when is not None:
            return (event.is_hook and event.when == self.when and event.hook_state == self.state
                    and self.workflow in (None, event.workflow))
        return self.type == "*" or event.type == self.type or (
            self.type.endswith(".*") and event.type.startswith(self.type[:-1]))


@dataclass(frozen=True)
class Reply:
    """An answer to the platform (see the module docstring for which and why)."""

    status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class HookApp:
    """An ASGI application receiving Nentang's signed hook events.

    ``secrets``: the unit's webhook secrets (``whsec_...``; during a rotation, the new and
    the old). ``base_url``, ``client_id``, ``client_secret``: the API client the handlers
    read and act as (its roles decide what they may see and do); it is created on first use
    and closed at the ASGI lifespan shutdown. ``tolerance``: seconds a request's timestamp
    may be off. ``timeout``: seconds a request's handlers may take (keep it under the
    platform's delivery timeout, 10 s by default); None: no limit. ``remember``: how many
    handled event ids are kept to drop repeats (per process: with several server processes,
    or after a restart, the check in :meth:`HookContext.act` is what prevents a second
    action). ``client``: an :class:`~nentang_sdk.AsyncClient` to use instead (not closed
    here).
    """

    def __init__(self, *, base_url: str, client_id: str, client_secret: str,
                 secrets: str | Sequence[str], tolerance: int = DEFAULT_TOLERANCE,
                 timeout: float | None = 8.0, remember: int = 10_000,
                 max_body: int = 1 << 20, client: AsyncClient | None = None) -> None:
        self.secrets = [secrets] if isinstance(secrets, str) else list(secrets)
        if not self.secrets:
            raise ValueError("a HookApp needs at least one webhook secret")
        for secret in self.secrets:
            secret_key(secret)  # a malformed secret fails at start-up, not per request
        self.base_url, self.client_id = base_url, client_id
        self._client_secret = client_secret
        self.tolerance, self.timeout, self.max_body = tolerance, timeout, max_body
        self._remember = remember
        self._routes: list[_Route] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._busy: set[str] = set()
        self._client = client
        self._owns_client = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> HookApp:
        """Configured from ``NENTANG_URL``, ``NENTANG_CLIENT_ID``, ``NENTANG_CLIENT_SECRET``
        and ``NENTANG_WEBHOOK_SECRETS`` (separated by commas or spaces), so secrets stay out
        of the code."""
        env = os.environ if environ is None else environ
        names = ("NENTANG_URL", "NENTANG_CLIENT_ID", "NENTANG_CLIENT_SECRET",
                 "NENTANG_WEBHOOK_SECRETS")
        missing = [n for n in names if not env.get(n, "").strip()]
        if missing:
            raise RuntimeError(f"set {', '.join(missing)} in the environment")
        return cls(base_url=env["NENTANG_URL"].strip(),
                   client_id=env["NENTANG_CLIENT_ID"].strip(),
                   client_secret=env["NENTANG_CLIENT_SECRET"].strip(),
                   secrets=env["NENTANG_WEBHOOK_SECRETS"].replace(",", " ").split(),
                   **options)

    # ---- registering handlers --------------------------------------------------------------

    def on_enter(self, state: str, *, workflow: str | None = None) -> Callable[[H], H]:
        """Handle the ``on_enter`` webhook hook of ``state`` (of any workflow, or only of
        ``workflow``)."""
        return self._register(HOOK_EVENT, "on_enter", state, workflow)

    def on_leave(self, state: str, *, workflow: str | None = None) -> Callable[[H], H]:
        """Handle the ``on_leave`` webhook hook of ``state``."""
        return self._register(HOOK_EVENT, "on_leave", state, workflow)

    def on_event(self, type: str) -> Callable[[H], H]:
        """Handle events of ``type`` (``case.opened``..., for a subscription's webhook;
        ``case.*``; ``*``; ``case.hook.webhook`` for every hook)."""
        return self._register(type, None, None, None)

    def _register(self, type: str, when: str | None, state: str | None,
                  workflow: str | None) -> Callable[[H], H]:
        def add(handler: H) -> H:
            _require_async(handler)
            self._routes.append(_Route(handler, type, when, state, workflow))
            return handler

        return add

    # ---- the API client --------------------------------------------------------------------

    @property
    def client(self) -> AsyncClient:
        """The API client the handlers share, created on first use (unless one was given)."""
        if self._client is None:
            self._client = AsyncClient(self.base_url, client_id=self.client_id,
                                       client_secret=self._client_secret)
            self._owns_client = True
        return self._client

    async def aclose(self) -> None:
        """Close the API client this app made (done at the ASGI lifespan shutdown); one
        given to it is left to its owner."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.close()

    # ---- handling ----------------------------------------------------------------------------

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Verify and dispatch one delivery; usable from any framework (this is what the
        ASGI entry point calls)."""
        try:
            event = verify(body, headers, self.secrets, tolerance=self.tolerance)
        except WebhookVerificationError as exc:
            log.warning("refused a request: %s", exc)
            return Reply(401, {"error": "invalid-signature", "detail": str(exc)})
        if event.id in self._seen:
            return Reply(200, {"status": "duplicate", "event": event.id})
        if event.id in self._busy:
            return Reply(409, {"status": "in-progress", "event": event.id},
                         {"retry-after": "5"})
        wanted = [r.handler for r in self._routes if r.wants(event)]
        if not wanted:
            self._done(event.id)
            return Reply(204)
        self._busy.add(event.id)
        try:
            async with asyncio.timeout(self.timeout):
                context = HookContext(event, self.client)
                for handler in wanted:
                    await handler(context)
        except TimeoutError:
            log.error("event %s (%s): handlers took over %s s", event.id, event.type,
                      self.timeout)
            return Reply(503, {"error": "timeout"}, {"retry-after": "30"})
        except Exception as exc:
            log.exception("event %s (%s): handler failed", event.id, event.type)
            return Reply(500, {"error": "handler-failed", "detail": type(exc).__name__})
        finally:
            self._busy.discard(event.id)
        self._done(event.id)
        return Reply(200, {"status": "handled", "event": event.id})

    def _done(self, event_id: str) -> None:
        self._seen[event_id] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)

    # ---- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # a websocket: not for us
            await send({"type": "websocket.close", "code": 1003})
            return
        if scope["method"] != "POST":
            await _send(send, Reply(405, {"error": "method-not-allowed"}, {"allow": "POST"}))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        body = await _read(receive, self.max_body, headers.get("content-length"))
        if body is None:
            await _send(send, Reply(413, {"error": "too-large"}))
            return
        await _send(send, await self.handle(body, headers))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _require_async(handler: object) -> None:
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"{getattr(handler, '__name__', handler)!r} must be an async function "
                        "taking a HookContext")


async def _read(receive: Receive, limit: int, declared: str | None) -> bytes | None:
    """The request body, or None if it is over ``limit`` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, reply: Reply) -> None:
    content = b"" if reply.body is None or reply.status == 204 else json.dumps(
        dict(reply.body)).encode()
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in reply.headers.items()]
    if content:
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
