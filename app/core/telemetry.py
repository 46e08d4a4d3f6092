"""OpenTelemetry tracing: a span per request (with the tenant code) and per database call.

Configured by the standard ``OTEL_*`` variables: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` name the service, ``OTEL_TRACES_SAMPLER`` samples, and
``OTEL_TRACES_EXPORTER`` picks the exporter (``otlp`` needs the ``nentang[otlp]`` extra and
reads ``OTEL_EXPORTER_OTLP_*``; ``console`` prints spans). Unset or ``none``: spans are made
but not exported.
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
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("nentang.telemetry")


def _configured_processors() -> list[SpanProcessor]:
    processors: list[SpanProcessor] = []
    names = os.environ.get("OTEL_TRACES_EXPORTER", "none")
    for name in (n.strip().lower() for n in names.split(",")):
        if name in ("", "none"):
            continue
        if name == "console":
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                    OTLPSpanExporter,
                )
            except ImportError:
                logger.error("OTEL_TRACES_EXPORTER=otlp needs: pip install 'nentang[otlp]'")
                continue
            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            logger.error("unknown OTEL_TRACES_EXPORTER %r ignored", name)
    return processors


def setup_tracing(app: FastAPI, engine: AsyncEngine) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "nentang"}))
    for processor in _configured_processors():
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
