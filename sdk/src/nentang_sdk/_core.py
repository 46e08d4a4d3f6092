"""How an SDK method becomes HTTP requests, written once for the sync and the async client.

A resource method is a *builder*: it turns its arguments into a :class:`Call` (path values,
query, body, what the answer parses into). A multi-step method (such as acting on a case,
which may read the case first for its ETag) is a generator that yields calls and receives
their parsed answers. The descriptors :func:`op`, :func:`flow` and :func:`paged` run the
builder on whichever client the resource hangs off: on a :class:`Client` the method returns
the value, on an :class:`AsyncClient` it returns an awaitable (or an async iterator for lists).

Each descriptor registers the service route it calls, so a test can prove that every
operation in the service's OpenAPI document has an SDK method.
"""

from __future__ import annotations

import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from functools import lru_cache
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    overload,
)
from urllib.parse import quote, unquote

import httpx
from pydantic import BaseModel, TypeAdapter

if TYPE_CHECKING:
    from nentang_sdk.client import AsyncClient, Client

P = ParamSpec("P")
T = TypeVar("T")
Steps = Generator["Call[Any]", Any, T]


class Sync:
    """Marks a resource bound to :class:`~nentang_sdk.Client`."""


class Async:
    """Marks a resource bound to :class:`~nentang_sdk.AsyncClient`."""


M = TypeVar("M", Sync, Async)

_PLACEHOLDER = re.compile(r"\{[^}]+\}")
ROUTES: dict[tuple[str, str], str] = {}
"""Every service route the SDK calls, ``(METHOD, path template)`` → the SDK name that calls it."""


def register_route(route: str, name: str) -> Route:
    parsed = Route.parse(route)
    ROUTES.setdefault((parsed.method, parsed.template), name)
    return parsed


@dataclass(frozen=True)
class Route:
    method: str
    template: str

    @classmethod
    def parse(cls, route: str) -> Route:
        method, _, template = route.partition(" ")
        return cls(method.upper(), template)

    def path(self, values: tuple[object, ...]) -> str:
        slots = _PLACEHOLDER.findall(self.template)
        if len(slots) != len(values):
            raise TypeError(f"{self.template} takes {len(slots)} path values, got {len(values)}")
        parts = iter(quote(str(v), safe="") for v in values)
        return _PLACEHOLDER.sub(lambda _m: next(parts), self.template)


@dataclass(frozen=True)
class Download:
    """A file the service sent: its bytes, media type and suggested file name."""

    content: bytes
    content_type: str
    filename: str | None

    def save(self, path: str) -> None:
        with open(path, "wb") as out:
            out.write(self.content)


NO_CONTENT = type(None)

_FILENAME = re.compile(r"filename\s*=\s*\"?([^\";]+)\"?", re.IGNORECASE)
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*UTF-8''([^;\s]+)", re.IGNORECASE)


def _filename(disposition: str) -> str | None:
    """The file name of a ``Content-Disposition``, preferring the RFC 6266 ``filename*``
    form (UTF-8, percent-encoded) that carries Vietnamese names intact."""
    encoded = _FILENAME_STAR.search(disposition)
    if encoded:
        return unquote(encoded.group(1))
    plain = _FILENAME.search(disposition)
    return plain.group(1) if plain else None


@lru_cache(maxsize=512)
def _adapter(returns: Any) -> TypeAdapter[Any]:
    return TypeAdapter(returns)


def parse_answer(returns: Any, response: httpx.Response) -> Any:
    """Turn a successful answer into what the method promises."""
    if returns is type(None):
        return None
    if returns is Download:
        return Download(response.content, response.headers.get("content-type", ""),
                        _filename(response.headers.get("content-disposition", "")))
    if returns is httpx.Response:
        return response
    return _adapter(returns).validate_python(response.json())


def _clean(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Drop arguments left at None: the service applies its own defaults."""
    if values is None:
        return None
    return {k: v for k, v in values.items() if v is not None}


class Call(Generic[T]):
    """One request: ``path`` fills the route's ``{placeholders}`` in order."""

    def __init__(self, returns: type[T], *path: object,
                 params: Mapping[str, Any] | None = None, json: Any = None,
                 data: Mapping[str, str] | None = None, files: Any = None,
                 content: bytes | None = None,
                 headers: Mapping[str, str] | None = None, route: str | None = None,
                 create: bool = False, idempotency_key: str | None = None,
                 auth: bool = True, basic: tuple[str, str] | None = None,
                 expect: tuple[int, ...] = ()) -> None:
        self.returns = returns
        self.path = path
        self.params = _clean(params)
        self.json = _clean(json) if isinstance(json, Mapping) else json
        self.data = data
        self.files = files
        self.content = content
        self.headers = dict(headers or {})
        self.route = Route.parse(route) if route else None
        self.create = create or idempotency_key is not None
        self.idempotency_key = idempotency_key
        self.auth = auth
        self.basic = basic
        """HTTP basic credentials instead of the bearer token (the token request itself)."""
        self.expect = expect
        """Statuses that are answers, not errors, for this call (the answer is then the raw
        :class:`httpx.Response`)."""


def body(**fields: Any) -> dict[str, Any]:
    """A JSON body from keyword arguments, leaving out those left at None."""
    return {k: (v.model_dump(mode="json", exclude_none=True) if isinstance(v, BaseModel) else v)
            for k, v in fields.items() if v is not None}


class Resource(Generic[M]):
    """A group of operations hanging off a client (``client.cases``, ``client.forms``...)."""

    def __init__(self, client: Client | AsyncClient) -> None:
        self._client = client


def _one(call: Call[T]) -> Steps[T]:
    answer: T = yield call
    return answer


class _Bound(Generic[P, T]):
    """Shared part of the descriptors: the route, the builder and the registration."""

    def __init__(self, route: str, build: Callable[..., Any]) -> None:
        self.route_text = route
        self.route = Route.parse(route)
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        register_route(self.route_text, f"{owner.__name__}.{name}")

    def steps(self, resource: Resource[Any], *args: Any, **kwargs: Any) -> Steps[T]:
        built = self.build(resource, *args, **kwargs)
        return built if isinstance(built, Generator) else _one(built)


class Operation(_Bound[P, T]):
    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        runner: Any = obj._client

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return runner._drive(self.route, self.steps(obj, *args, **kwargs))

        method.__doc__ = self.__doc__
        method.__name__ = self.__name__
        return method


class Paged(_Bound[P, T]):
    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any]) -> Callable[P, Pager[T]]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type[Any]
                ) -> Callable[P, AsyncPager[T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        from nentang_sdk.client import AsyncClient

        pager = AsyncPager if isinstance(obj._client, AsyncClient) else Pager

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return pager(obj._client, self.route, self.build(obj, *args, **kwargs))

        method.__doc__ = self.__doc__
        method.__name__ = self.__name__
        return method


def op(route: str) -> Callable[[Callable[Concatenate[Any, P], Call[T]]], Operation[P, T]]:
    """A method that makes one request on ``route`` (``"GET /api/v1/..."``)."""

    def wrap(build: Callable[Concatenate[Any, P], Call[T]]) -> Operation[P, T]:
        return Operation(route, build)

    return wrap


def flow(route: str) -> Callable[[Callable[Concatenate[Any, P], Steps[T]]], Operation[P, T]]:
    """A method that makes several requests; ``route`` is the one it exists for."""

    def wrap(build: Callable[Concatenate[Any, P], Steps[T]]) -> Operation[P, T]:
        return Operation(route, build)

    return wrap


def paged(route: str) -> Callable[[Callable[Concatenate[Any, P], Call[T]]], Paged[P, T]]:
    """A list method: the call's ``returns`` is the item type; pages follow ``next_cursor``."""

    def wrap(build: Callable[Concatenate[Any, P], Call[T]]) -> Paged[P, T]:
        return Paged(route, build)

    return wrap


class Page(BaseModel, Generic[T]):
    """One page of a list: its items and the cursor of the next page (None on the last)."""

    items: list[T]
    next_cursor: str | None = None


class _PagerBase(Generic[T]):
    def __init__(self, client: Any, route: Route, call: Call[T]) -> None:
        self._client = client
        self._route = route
        self._call = call

    def _page_call(self, cursor: str | None) -> Call[Page[T]]:
        call = self._call
        params = dict(call.params or {})
        if cursor:
            params["cursor"] = cursor
        page_type: Any = Page[call.returns]  # type: ignore[name-defined]
        return Call(page_type, *call.path, params=params, headers=call.headers,
                    auth=call.auth, basic=call.basic)


class Pager(_PagerBase[T]):
    """Iterate over every item of a list, fetching pages as needed.

    ``for case in client.cases.list("HN"): ...``; ``.pages()`` yields whole pages;
    ``.first_page()`` fetches one page only.
    """

    def pages(self, cursor: str | None = None) -> Iterator[Page[T]]:
        while True:
            page: Page[T] = self._client._drive(self._route, _one(self._page_call(cursor)))
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def first_page(self) -> Page[T]:
        return next(self.pages())

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items

    def to_list(self) -> list[T]:
        return list(self)


class AsyncPager(_PagerBase[T]):
    """``async for case in client.cases.list("HN"): ...``; see :class:`Pager`."""

    async def pages(self, cursor: str | None = None) -> AsyncIterator[Page[T]]:
        while True:
            page: Page[T] = await self._client._drive(self._route,
                                                      _one(self._page_call(cursor)))
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def first_page(self) -> Page[T]:
        async for page in self.pages():
            return page
        raise AssertionError("pages() always yields at least one page")

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def to_list(self) -> list[T]:
        return [item async for item in self]
