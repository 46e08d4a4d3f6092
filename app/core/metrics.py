"""OpenTelemetry metrics: request rate and latency per route, outbox lag, SLA breaches, and the
outcomes of deliveries, signatures and gateway calls.

Configured by the standard ``OTEL_METRICS_EXPORTER`` variable, a comma list:

* ``none`` (the default): nothing is recorded; every helper here returns at once.
* ``otlp``: pushed every ``OTEL_METRIC_EXPORT_INTERVAL`` ms (default 60 000) by the OTLP/HTTP
  exporter of the ``nentang[otlp]`` extra, which reads ``OTEL_EXPORTER_OTLP_*``.
* ``prometheus``: served for scraping at ``/metrics`` on ``OTEL_EXPORTER_PROMETHEUS_HOST``
  (default 127.0.0.1) and ``OTEL_EXPORTER_PROMETHEUS_PORT`` (default 9464), with the
  ``nentang[prometheus]`` extra. A port already taken is logged and the service goes on
  without it (``serve --workers N`` starts N processes: only the first gets the port).
* ``console``: printed, for trying things out.

Cardinality: the platform has about 3,355 tenants, so no instrument carries a raw tenant
code. Where a ``tenant`` attribute appears it is the tenant's *province-level* ancestor (the
tenant itself at depth 0 or 1): at most the root, its 34 provinces and the root's own
agencies. It is learnt from the tenant rows the process loads anyway (an ORM ``load`` hook),
so a request costs no query; only a province the process has not met yet is looked up, once.

The global OpenTelemetry meter provider is deliberately left unset: the FastAPI
instrumentation would otherwise record its own, older-convention HTTP metrics (with the
``Host`` header as an attribute) next to ours.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from wsgiref.simple_server import WSGIServer

from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.metrics import _Gauge as Gauge
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.core.requests import current_tenant_code
from app.core.telemetry import exporter_names, service_resource

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.core.db import Database

logger = logging.getLogger("nentang.telemetry")

P = ParamSpec("P")
R = TypeVar("R")

# Seconds: 5 ms … 10 s, the OpenTelemetry HTTP semantic conventions' recommended bounds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                    7.5, 10.0)
# Anything else a client sends as its method is recorded as "_OTHER" (semantic conventions).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                      "PATCH"})
DEFAULT_PROMETHEUS_HOST = "127.0.0.1"
DEFAULT_PROMETHEUS_PORT = 9464


@dataclass(frozen=True)
class Instruments:
    request_duration: Histogram
    requests: Counter
    sla_breaches: Counter
    outbox_lag: Gauge
    outbox_pending: Gauge
    deliveries: Counter
    signatures: Counter
    signing_call_duration: Histogram
    gateway_calls: Counter
    gateway_call_duration: Histogram

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        return cls(
            request_duration=meter.create_histogram(
                "http.server.request.duration", unit="s",
                description="Duration of HTTP server requests.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS),
            requests=meter.create_counter(
                "nentang.requests", unit="{request}",
                description="Requests by province-level tenant, route and status class."),
            sla_breaches=meter.create_counter(
                "nentang.sla.breaches", unit="{breach}",
                description="SLA timers fired by the worker, one per breach rule applied."),
            outbox_lag=meter.create_gauge(
                "nentang.outbox.lag", unit="s",
                description="Age of the oldest due, unsent delivery (0 when none)."),
            outbox_pending=meter.create_gauge(
                "nentang.outbox.pending", unit="{delivery}",
                description="Deliveries not sent yet (due or waiting to be retried)."),
            deliveries=meter.create_counter(
                "nentang.deliveries", unit="{attempt}",
                description="Delivery attempts recorded by the worker, by outcome."),
            signatures=meter.create_counter(
                "nentang.signatures", unit="{signature}",
                description="Signature outcomes by provider."),
            signing_call_duration=meter.create_histogram(
                "nentang.signing.call.duration", unit="s",
                description="Duration of calls to remote signing services.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS),
            gateway_calls=meter.create_counter(
                "nentang.gateway.calls", unit="{call}",
                description="Calls through the data-sharing gateway, by outcome."),
            gateway_call_duration=meter.create_histogram(
                "nentang.gateway.call.duration", unit="s",
                description="Duration of the platform's calls through the data-sharing "
                "gateway.", explicit_bucket_boundaries_advisory=DURATION_BUCKETS),
        )


@dataclass
class _State:
    configured: bool = False
    provider: MeterProvider | None = None
    instruments: Instruments | None = None  # None: nothing records
    server: tuple[WSGIServer, threading.Thread] | None = None


_state = _State()


def instruments() -> Instruments | None:
    """The live instruments, or None when metrics are off."""
    return _state.instruments


# ---- set-up -------------------------------------------------------------------------------------


def _prometheus_reader() -> MetricReader | None:
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server
    except ImportError:
        logger.error("OTEL_METRICS_EXPORTER=prometheus needs: pip install 'nentang[prometheus]'")
        return None
    host = os.environ.get("OTEL_EXPORTER_PROMETHEUS_HOST", DEFAULT_PROMETHEUS_HOST)
    port = int(os.environ.get("OTEL_EXPORTER_PROMETHEUS_PORT", DEFAULT_PROMETHEUS_PORT))
    try:
        _state.server = start_http_server(port, addr=host)
    except OSError as exc:
        logger.error("metrics: cannot serve Prometheus on %s:%d (%s); this process goes on "
                     "without it", host, port, exc)
        return None
    logger.info("metrics: Prometheus scrape endpoint on http://%s:%d/metrics", host, port)
    return PrometheusMetricReader()


def _configured_readers() -> list[MetricReader]:
    readers: list[MetricReader] = []
    for name in exporter_names("OTEL_METRICS_EXPORTER"):
        if name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[import-not-found, unused-ignore]
                    OTLPMetricExporter,
                )
            except ImportError:
                logger.error("OTEL_METRICS_EXPORTER=otlp needs: pip install 'nentang[otlp]'")
                continue
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        elif name == "prometheus":
            reader = _prometheus_reader()
            if reader is not None:
                readers.append(reader)
        else:
            logger.error("unknown OTEL_METRICS_EXPORTER %r ignored", name)
    return readers


def setup_metrics(component: str, *,
                  readers: Sequence[MetricReader] | None = None) -> MeterProvider | None:
    """Configure metrics for this process (``component``: ``api`` or ``worker``) and return
    the provider, or None when nothing exports them.

    Idempotent: a process configures once, from the environment, whatever number of apps it
    creates. ``readers`` (tests) replaces the configuration with exactly those readers.
    """
    if readers is None and _state.configured:
        return _state.provider
    if readers is not None:
        shutdown_metrics()
    chosen = list(readers) if readers is not None else _configured_readers()
    _state.configured = True
    if not chosen:
        return None
    provider = MeterProvider(
        metric_readers=chosen,
        resource=service_resource(**{"nentang.component": component}))
    _state.provider = provider
    _state.instruments = Instruments.create(provider.get_meter("nentang", __version__))
    _tree.listen()
    return provider


def shutdown_metrics() -> None:
    """Export what is left and stop (on the process's exit; tests use it to start over)."""
    provider, server = _state.provider, _state.server
    _state.provider = _state.instruments = _state.server = None
    _state.configured = False
    _tree.forget()
    if provider is not None:
        try:
            provider.shutdown()
        except Exception:  # shutting down must never fail the process's exit
            logger.exception("metrics: shutting the meter provider down failed")
    if server is not None:
        httpd, thread = server
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# ---- the province-level tenant ------------------------------------------------------------------


def level_path(path: str) -> str:
    """The path of a tenant's province-level ancestor: ``/a/b/c/`` -> ``/a/b/``."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(parts[:2]) + "/"


@dataclass
class _Tree:
    """What this process has seen of the tenant tree: enough to name any tenant's
    province-level ancestor. Bounded by the number of tenants."""

    paths_by_code: dict[str, str] = field(default_factory=dict)
    paths_by_id: dict[uuid.UUID, str] = field(default_factory=dict)
    level_codes: dict[str, str] = field(default_factory=dict)  # path (depth ≤ 1) -> code
    listening: bool = False

    def learn(self, tenant_id: uuid.UUID | None, code: str | None, path: str | None) -> None:
        if code is None or path is None:
            return
        self.paths_by_code[code] = path
        if tenant_id is not None:
            self.paths_by_id[tenant_id] = path
        if path.count("/") <= 3:  # "/root/" or "/root/province/"
            self.level_codes[path] = code

    def _on_load(self, target: Any, *_: Any) -> None:
        # Read the loaded state only: touching an unloaded attribute would emit SQL.
        state = target.__dict__
        self.learn(state.get("id"), state.get("code"), state.get("path"))

    def listen(self) -> None:
        from sqlalchemy import event

        from app.tenancy.models import Tenant

        if not self.listening:
            event.listen(Tenant, "load", self._on_load)
            event.listen(Tenant, "refresh", self._on_load)
            self.listening = True

    def forget(self) -> None:
        from sqlalchemy import event

        from app.tenancy.models import Tenant

        if self.listening:
            event.remove(Tenant, "load", self._on_load)
            event.remove(Tenant, "refresh", self._on_load)
            self.listening = False
        self.paths_by_code.clear()
        self.paths_by_id.clear()
        self.level_codes.clear()

    async def fetch(self, session: AsyncSession, *, path: str | None = None,
                    tenant_id: uuid.UUID | None = None) -> None:
        """Learn one tenant (by path or id) in ``session``, which must see it."""
        from sqlalchemy import select

        from app.tenancy.models import Tenant

        where = Tenant.path == path if path is not None else Tenant.id == tenant_id
        for row in (await session.execute(
                select(Tenant.id, Tenant.code, Tenant.path).where(where))).all():
            self.learn(row.id, row.code, row.path)

    async def level_code(self, path: str, session: AsyncSession) -> str | None:
        level = level_path(path)
        if level not in self.level_codes:
            await self.fetch(session, path=level)
        return self.level_codes.get(level)


_tree = _Tree()


async def _request_tenant(scope: Scope) -> str | None:
    """The province-level code of the tenant the request acted on, if it loaded one."""
    code = current_tenant_code()
    path = _tree.paths_by_code.get(code) if code is not None else None
    if path is None:
        return None  # no tenant, or one that does not exist (a 404): never the raw code
    found = _tree.level_codes.get(level_path(path))
    if found is not None:
        return found
    from app.tenancy.scope import TenantScope, apply_scope

    db: Database = scope["app"].state.db
    try:
        async with db.sessionmaker() as session, session.begin():
            await apply_scope(session, TenantScope.platform("metrics"))
            return await _tree.level_code(path, session)
    except Exception:  # a metric must never fail a request
        logger.debug("metrics: the province of %s could not be read", code, exc_info=True)
        return None


async def tenant_level(session: AsyncSession, tenant_id: uuid.UUID) -> str | None:
    """The province-level code of a tenant, in a session that sees it (the worker's)."""
    path = _tree.paths_by_id.get(tenant_id)
    if path is None:
        await _tree.fetch(session, tenant_id=tenant_id)
        path = _tree.paths_by_id.get(tenant_id)
    return await _tree.level_code(path, session) if path is not None else None


# ---- HTTP requests ------------------------------------------------------------------------------


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


class MetricsMiddleware:
    """Records ``http.server.request.duration`` (by method, route *template* and status) and
    ``nentang.requests`` (by province-level tenant, route and status class). A path that
    matches no route has no ``http.route``: raw paths never become attribute values."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _state.instruments
        if found is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "")
            attributes: dict[str, str | int] = {
                "http.request.method": method if method in _METHODS else "_OTHER",
                "http.response.status_code": status}
            route = getattr(scope.get("route"), "path_format", None)
            if route is not None:
                attributes["http.route"] = route
            found.request_duration.record(elapsed, attributes)
            counted: dict[str, str] = {"status_class": _status_class(status)}
            if route is not None:
                counted["http.route"] = route
            tenant = await _request_tenant(scope)
            if tenant is not None:
                counted["tenant"] = tenant
            found.requests.add(1, counted)


# ---- the worker ---------------------------------------------------------------------------------


async def sla_breach(session: AsyncSession, tenant_id: uuid.UUID,
                     rules: Iterable[Mapping[str, Any]]) -> None:
    """Count a fired SLA timer: once per breach rule it applies (``none`` when it has no
    rules), by the case's province-level tenant."""
    found = _state.instruments
    if found is None:
        return
    tenant = await tenant_level(session, tenant_id)
    for kind in [str(r.get("type")) for r in rules] or ["none"]:
        attributes = {"rule": kind} if tenant is None else {"rule": kind, "tenant": tenant}
        found.sla_breaches.add(1, attributes)


_DELIVERY_OUTCOMES = {"delivered": "delivered", "dead": "dead", "pending": "retry"}


def delivery(status: str, transport: str) -> None:
    """Count a recorded delivery attempt by the delivery's status after it (``pending``
    means it will be retried)."""
    found = _state.instruments
    if found is not None:
        found.deliveries.add(1, {"outcome": _DELIVERY_OUTCOMES.get(status, status),
                                 "transport": transport or "none"})


async def observe_backlog(db: Database) -> None:
    """Record ``nentang.outbox.lag`` and ``nentang.outbox.pending`` (once per worker round).
    Lag: how long the most overdue pending delivery has been due (a delivery waiting for its
    retry is not due; one held behind its stream's failing head is)."""
    found = _state.instruments
    if found is None:
        return
    from sqlalchemy import func, select

    from app.core.db import utcnow
    from app.deliveries.models import Delivery
    from app.tenancy.scope import TenantScope, apply_scope

    now = utcnow()
    try:
        async with db.sessionmaker() as session, session.begin():
            await apply_scope(session, TenantScope.platform("worker"))
            pending = (await session.execute(select(func.count()).select_from(Delivery).where(
                Delivery.status == "pending"))).scalar_one()
            oldest = (await session.execute(select(func.min(Delivery.next_attempt_at)).where(
                Delivery.status == "pending", Delivery.next_attempt_at <= now))).scalar_one()
    except Exception:  # a metric must never stop the worker's round
        logger.warning("metrics: the outbox backlog could not be read", exc_info=True)
        return
    found.outbox_pending.set(pending)
    found.outbox_lag.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


# ---- signatures ---------------------------------------------------------------------------------


def signature(outcome: str, provider: str) -> None:
    """Count a signature outcome: ``pending`` (a transaction started), ``signed``,
    ``invalid``, ``rejected``, ``expired``, ``failed`` or ``unavailable``."""
    found = _state.instruments
    if found is not None:
        found.signatures.add(1, {"outcome": outcome, "provider": provider})


def signature_failed(provider: str, status: str, code: str) -> None:
    """Count a signature that ended without one (the row's ``status`` and failure code)."""
    if _state.instruments is None:
        return
    if status == "expired":
        outcome = "expired"
    elif code in ("rejected", "signature-invalid"):
        outcome = "rejected" if code == "rejected" else "invalid"
    else:
        outcome = "failed"
    signature(outcome, provider)


def signing_call(provider: str, operation: str = "path"
                 ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Time a provider's call to its remote service (``nentang.signing.call.duration``):
    decorates the async method whose parameter ``operation`` names the operation (a fixed
    path of the protocol); a call that raises failed."""

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        index = list(inspect.signature(function).parameters).index(operation)

        @functools.wraps(function)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            found = _state.instruments
            if found is None:
                return await function(*args, **kwargs)
            named = kwargs.get(operation, args[index] if len(args) > index else "")
            started, outcome = time.perf_counter(), "error"
            try:
                result = await function(*args, **kwargs)
                outcome = "ok"
                return result
            finally:
                found.signing_call_duration.record(time.perf_counter() - started, {
                    "provider": provider, "operation": str(named), "outcome": outcome})
        return timed

    return decorate


# ---- the data-sharing gateway -------------------------------------------------------------------


def gateway_failure(exc: BaseException) -> str:
    """``timeout``, ``refused`` (the target is forbidden, or the gateway or service refused
    the platform: 401, 403 or an X-Road ``Client.*`` error) or ``error``."""
    import httpx

    from app.deliveries.targets import ForbiddenTarget

    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, ForbiddenTarget):
        return "refused"
    if isinstance(exc, httpx.HTTPStatusError) and (
            exc.response.status_code in (401, 403)
            or exc.response.headers.get("x-road-error", "").startswith("Client.")):
        return "refused"
    return "error"


def gateway_call(direction: str, service: str | None, outcome: str,
                 started: float | None = None) -> None:
    """Count a call through the gateway: ``outbound`` (the platform asks a remote service)
    or ``inbound`` (the gateway calls a data service here); ``started``
    (``time.perf_counter()``) also records its duration."""
    found = _state.instruments
    if found is None:
        return
    attributes = {"direction": direction, "outcome": outcome}
    if service:
        attributes["service"] = service
    found.gateway_calls.add(1, attributes)
    if started is not None:
        found.gateway_call_duration.record(time.perf_counter() - started, attributes)
