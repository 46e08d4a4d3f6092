"""OpenTelemetry tracing: a span per request (with the tenant code) and per database call.

Configured by the standard ``OTEL_*`` variables: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` name the service, ``OTEL_TRACES_SAMPLER`` samples, and
``OTEL_TRACES_EXPORTER`` picks the exporter (``otlp`` needs the ``nentang[otlp]`` extra and
reads ``OTEL_EXPORTER_OTLP_*``; ``console`` prints spans). Unset or ``none``: nothing is
exported, so unless ``OTEL_TRACES_SAMPLER`` says otherwise spans are not recorded either
(recording them cost about a seventh of a request's CPU for no reader).

Metrics are :mod:`app.core.metrics`; log lines carry the current span's trace and span ids
(:mod:`app.core.logging`), sampled or not. See docs/observability.md.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("nentang.telemetry")


def exporter_names(variable: str) -> list[str]:
    """The exporters an ``OTEL_*_EXPORTER`` variable names (a comma list), each once,
    without ``none``."""
    names = os.environ.get(variable, "none")
    return [n for n in dict.fromkeys(n.strip().lower() for n in names.split(","))
            if n not in ("", "none")]


def _configured_processors() -> list[SpanProcessor]:
    processors: list[SpanProcessor] = []
    for name in exporter_names("OTEL_TRACES_EXPORTER"):
        if name == "console":
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found, unused-ignore]
                    OTLPSpanExporter,
                )
            except ImportError:
                logger.error("OTEL_TRACES_EXPORTER=otlp needs: pip install 'nentang[otlp]'")
                continue
            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            logger.error("unknown OTEL_TRACES_EXPORTER %r ignored", name)
    return processors


def service_resource(**attributes: str) -> Resource:
    """The process's resource: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` when
    set (attributes passed to ``Resource.create`` would override them), else ``nentang``."""
    resource = Resource.create(attributes)
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "nentang"}))
    return resource


def setup_tracing(app: FastAPI, engine: AsyncEngine) -> TracerProvider:
    processors = _configured_processors()
    resource = service_resource()
    if processors or os.environ.get("OTEL_TRACES_SAMPLER"):
        provider = TracerProvider(resource=resource)
    else:
        provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    for processor in processors:
        provider.add_span_processor(processor)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,readyz"
    )
    # The instrumentation's declared range stops at SQLAlchemy 2.0; it uses only engine events,
    # which 2.1 keeps, and tests/test_telemetry.py checks that the spans still appear.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=provider, enable_commenter=False,
        skip_dep_check=True,
    )
    return provider
