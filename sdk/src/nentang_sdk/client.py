"""The clients: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio), built on httpx.

Both expose the same resources with the same methods; only the way they wait differs::

    with Client("https://nentang.gov.vn", client_id=..., client_secret=...) as nt:
        for case in nt.cases.list("HN", status="open"):
            ...

    async with AsyncClient(...) as nt:
        async for case in nt.cases.list("HN", status="open"):
            ...
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx

from nentang_sdk._core import Async, Call, M, Route, Steps, Sync, parse_answer
from nentang_sdk._retries import RetryPolicy
from nentang_sdk._version import __version__
from nentang_sdk.auth import Auth, BearerToken, ClientCredentials, token_error
from nentang_sdk.errors import APIError, TransportError, error_for
from nentang_sdk.resources.access import Grants, Roles, Users
from nentang_sdk.resources.audit import Audit
from nentang_sdk.resources.cases import Cases, Tasks
from nentang_sdk.resources.clients import Clients
from nentang_sdk.resources.deliveries import Deliveries, Subscriptions, WebhookSecrets
from nentang_sdk.resources.forms import Forms, Submissions
from nentang_sdk.resources.identity_providers import IdentityProviders
from nentang_sdk.resources.platform import OAuth, Platform
from nentang_sdk.resources.reports import Reports
from nentang_sdk.resources.sharing import Sharing
from nentang_sdk.resources.signatures import Signatures, Signing
from nentang_sdk.resources.tenants import Tenants
from nentang_sdk.resources.workflows import Calendars, Workflows

T = TypeVar("T")
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _auth_from(auth: Auth | None, client_id: str | None, client_secret: str | None,
               token: str | None, scope: str | None) -> Auth | None:
    if auth is not None:
        return auth
    if token is not None:
        return BearerToken(token)
    if client_id is not None:
        if client_secret is None:
            raise ValueError("client_secret is required with client_id")
        return ClientCredentials(client_id=client_id, client_secret=client_secret, scope=scope)
    return None


TOKEN_ROUTE = Route("POST", "/oauth/token")


@dataclass(frozen=True)
class Send:
    request: httpx.Request


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class NeedToken:
    renew: bool


Plan = Generator[Send | Sleep | NeedToken, Any, T]


def _idempotency_key(call: Call[Any]) -> str | None:
    """One key per logical create, kept across every retry of it."""
    return call.idempotency_key or (str(uuid.uuid4()) if call.create else None)


class _Base(Generic[M, HttpT]):
    """Configuration and resources shared by both clients."""

    def __init__(self, base_url: str, http: HttpT, *, auth: Auth | None,
                 retries: RetryPolicy | int, language: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.retries = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries)
        self._http: HttpT = http
        http.headers["User-Agent"] = f"nentang-sdk/{__version__} {http.headers['User-Agent']}"
        if language:
            http.headers["Accept-Language"] = language
        self.tenants: Tenants[M] = Tenants(self)  # type: ignore[arg-type]
        self.users: Users[M] = Users(self)  # type: ignore[arg-type]
        self.roles: Roles[M] = Roles(self)  # type: ignore[arg-type]
        self.grants: Grants[M] = Grants(self)  # type: ignore[arg-type]
        self.clients: Clients[M] = Clients(self)  # type: ignore[arg-type]
        self.identity_providers: IdentityProviders[M] = IdentityProviders(self)  # type: ignore[arg-type]
        self.forms: Forms[M] = Forms(self)  # type: ignore[arg-type]
        self.submissions: Submissions[M] = Submissions(self)  # type: ignore[arg-type]
        self.workflows: Workflows[M] = Workflows(self)  # type: ignore[arg-type]
        self.calendars: Calendars[M] = Calendars(self)  # type: ignore[arg-type]
        self.cases: Cases[M] = Cases(self)  # type: ignore[arg-type]
        self.tasks: Tasks[M] = Tasks(self)  # type: ignore[arg-type]
        self.signatures: Signatures[M] = Signatures(self)  # type: ignore[arg-type]
        self.signing: Signing[M] = Signing(self)  # type: ignore[arg-type]
        self.sharing: Sharing[M] = Sharing(self)  # type: ignore[arg-type]
        self.subscriptions: Subscriptions[M] = Subscriptions(self)  # type: ignore[arg-type]
        self.deliveries: Deliveries[M] = Deliveries(self)  # type: ignore[arg-type]
        self.webhook_secrets: WebhookSecrets[M] = WebhookSecrets(self)  # type: ignore[arg-type]
        self.reports: Reports[M] = Reports(self)  # type: ignore[arg-type]
        self.audit: Audit[M] = Audit(self)  # type: ignore[arg-type]
        self.oauth: OAuth[M] = OAuth(self)  # type: ignore[arg-type]
        self.platform: Platform[M] = Platform(self)  # type: ignore[arg-type]

    def _request(self, route: Route, call: Call[Any], token: str | None,
                 idempotency_key: str | None) -> httpx.Request:
        chosen = call.route or route
        headers = dict(call.headers)
        if token and call.auth and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        request: httpx.Request = self._http.build_request(
            chosen.method, chosen.path(call.path), params=call.params, json=call.json,
            data=call.data, files=call.files, content=call.content,
            headers=headers)
        return request

    def _answer(self, call: Call[Any], response: httpx.Response) -> Any:
        if response.status_code in call.expect:
            return response
        if response.status_code >= 400:
            raise error_for(response)
        return parse_answer(call.returns, response)

    def _delay(self, attempt: int, method: str, call: Call[Any],
               outcome: httpx.Response | httpx.TransportError) -> float | None:
        if isinstance(outcome, httpx.Response):
            return self.retries.delay_after_status(
                attempt, method, call.create, outcome.status_code,
                outcome.headers.get("retry-after"))
        sent = not isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout)
        return self.retries.delay_after_failure(attempt, method, call.create, sent)

    # The exchanges below are written once, without I/O: they yield what to do (send a
    # request, sleep, get a token) and each client's ``_run`` does it, blocking or awaiting.

    def _attempts(self, route: Route, call: Call[Any], key: str | None,
                  token: str | None) -> Plan[httpx.Response]:
        """Send ``call`` until it gets an answer to keep: retried per the policy."""
        method = (call.route or route).method
        attempt = 0
        while True:
            request = self._request(route, call, token, key)
            if call.basic is not None:
                pair = ":".join(call.basic).encode()
                request.headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
            outcome = yield Send(request)
            delay = self._delay(attempt, method, call, outcome)
            if delay is None:
                if isinstance(outcome, httpx.TransportError):
                    raise TransportError(f"{method} {request.url}: {outcome}") from outcome
                answer: httpx.Response = outcome
                return answer
            yield Sleep(delay)
            attempt += 1

    def _exchange(self, route: Route, call: Call[Any]) -> Plan[Any]:
        """One call: with a token (fetched again once if the service refuses it) and one
        idempotency key for all its attempts; the answer parsed or raised."""
        key = _idempotency_key(call)
        renewed = False
        while True:
            token = (yield NeedToken(renew=False)) if call.auth else None
            response = yield from self._attempts(route, call, key, token)
            if (response.status_code == 401 and call.auth and self.auth is not None
                    and not renewed and self.auth.refresh_form() is not None):
                renewed = True
                yield NeedToken(renew=True)
                continue
            return self._answer(call, response)

    def _flow(self, route: Route, steps: Steps[T]) -> Plan[T]:
        """A resource method's calls, one exchange each; an error answer is thrown into the
        method so it may handle it (as ``cases.act`` does with a stale ETag)."""
        try:
            call = next(steps)
            while True:
                try:
                    answer = yield from self._exchange(route, call)
                except APIError as error:
                    call = steps.throw(error)
                else:
                    call = steps.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result

    def _fetch_token(self, renew: bool) -> Plan[str | None]:
        """The current token, fetched from ``/oauth/token`` when due (the caller holds the
        client's token lock)."""
        auth = self.auth
        if auth is None:
            return None
        if renew:
            auth.invalidate()
        token = auth.token()
        form = None if token else auth.refresh_form()
        if form is None:
            return token
        call: Call[Any] = Call(dict, data=form[0], basic=form[1], auth=False)
        response = yield from self._attempts(TOKEN_ROUTE, call, None, None)
        if response.status_code != 200:
            raise token_error(response)
        auth.accept(response.json())
        return auth.token() or str(response.json()["access_token"])


class Client(_Base[Sync, httpx.Client]):
    """A blocking client. Give it either ``client_id`` and ``client_secret`` (an API client:
    tokens are fetched, cached and renewed before they expire), ``token`` (a bearer token
    obtained elsewhere) or ``auth`` (for example the session from
    :func:`~nentang_sdk.auth.login_with_browser`).

    ``retries`` is how many times a failed request is repeated (or a :class:`RetryPolicy`);
    ``language`` ("vi" or "en") chooses the language of error titles; ``http`` lets you bring
    your own :class:`httpx.Client` (proxies, certificates, transports).
    """

    def __init__(self, base_url: str, *, client_id: str | None = None,
                 client_secret: str | None = None, token: str | None = None,
                 auth: Auth | None = None, scope: str | None = None, timeout: float = 30.0,
                 retries: RetryPolicy | int = RetryPolicy(), language: str | None = None,
                 http: httpx.Client | None = None) -> None:
        client = http or httpx.Client(base_url=base_url, timeout=timeout)
        if http is not None:
            client.base_url = httpx.URL(base_url)
        super().__init__(base_url, client, auth=_auth_from(auth, client_id, client_secret,
                                                            token, scope),
                         retries=retries, language=language)
        self._token_lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _token(self, renew: bool) -> str | None:
        with self._token_lock:
            return self._run(self._fetch_token(renew))

    def _run(self, plan: Plan[T]) -> T:
        """Carry out a plan, blocking."""
        try:
            step = next(plan)
            while True:
                result: Any = None
                if isinstance(step, Send):
                    try:
                        result = self._http.send(step.request)
                    except httpx.TransportError as failure:
                        result = failure
                elif isinstance(step, Sleep):
                    time.sleep(step.seconds)
                else:
                    result = self._token(step.renew)
                step = plan.send(result)
        except StopIteration as done:
            value: T = done.value
            return value

    def _drive(self, route: Route, steps: Steps[T]) -> T:
        return self._run(self._flow(route, steps))


class AsyncClient(_Base[Async, httpx.AsyncClient]):
    """The asyncio twin of :class:`Client`: same arguments, same resources; methods are
    awaited and lists are iterated with ``async for``."""

    def __init__(self, base_url: str, *, client_id: str | None = None,
                 client_secret: str | None = None, token: str | None = None,
                 auth: Auth | None = None, scope: str | None = None, timeout: float = 30.0,
                 retries: RetryPolicy | int = RetryPolicy(), language: str | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        client = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        if http is not None:
            client.base_url = httpx.URL(base_url)
        super().__init__(base_url, client, auth=_auth_from(auth, client_id, client_secret,
                                                            token, scope),
                         retries=retries, language=language)
        self._token_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _token(self, renew: bool) -> str | None:
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            return await self._run(self._fetch_token(renew))

    async def _run(self, plan: Plan[T]) -> T:
        """Carry out a plan, awaiting."""
        try:
            step = next(plan)
            while True:
                result: Any = None
                if isinstance(step, Send):
                    try:
                        result = await self._http.send(step.request)
                    except httpx.TransportError as failure:
                        result = failure
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                else:
                    result = await self._token(step.renew)
                step = plan.send(result)
        except StopIteration as done:
            value: T = done.value
            return value

    async def _drive(self, route: Route, steps: Steps[T]) -> T:
        return await self._run(self._flow(route, steps))
