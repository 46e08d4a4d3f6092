"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.audit.endpoints import router as audit_router
from app.cases.endpoints import router as cases_router
from app.config import Settings, get_settings
from app.core import migrations
from app.core.body_limits import BodyLimitMiddleware
from app.core.db import Database
from app.core.health import router as health_router
from app.core.metrics import MetricsMiddleware, setup_metrics, shutdown_metrics
from app.core.problems import install_problem_handlers
from app.core.requests import RequestContextMiddleware
from app.core.telemetry import setup_tracing
from app.deliveries.endpoints import router as deliveries_router
from app.forms.endpoints import router as forms_router
from app.forms.storage import storage_from_url
from app.identity.access_endpoints import me_router
from app.identity.access_endpoints import router as access_router
from app.identity.client_endpoints import router as client_router
from app.identity.federation_endpoints import idp_router
from app.identity.federation_endpoints import router as federation_router
from app.identity.oauth_endpoints import router as oauth_router
from app.identity.ratelimit import RateLimiter
from app.identity.tokens import TokenService
from app.reports.endpoints import router as reports_router
from app.sharing.endpoints import gateway as sharing_gateway
from app.sharing.endpoints import router as sharing_router
from app.signing.endpoints import callbacks as signing_callbacks
from app.signing.endpoints import router as signing_router
from app.tenancy.endpoints import router as tenancy_router
from app.ui import endpoints as ui
from app.workflows.calendar_endpoints import router as calendar_router
from app.workflows.endpoints import router as workflows_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.should_auto_migrate:
            await asyncio.to_thread(migrations.upgrade, settings)
        yield
        await db.dispose()
        shutdown_metrics()  # the last export before the process ends

    app = FastAPI(
        title="Nentang",
        version=__version__,
        summary="Multi-tenant platform for Vietnam's shared government digital platforms",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.tokens = TokenService(
        settings.effective_signing_key_file,
        settings.issuer,
        settings.access_token_ttl_seconds,
    )
    app.state.attachments = storage_from_url(settings.effective_attachment_storage_url)
    app.state.rate_limiter = RateLimiter(settings.client_rate_limit_per_minute)
    app.state.revisions = migrations.revisions(settings)
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    # Inside the request context, which still holds the tenant when a request ends.
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)
    for router in (health_router, oauth_router, federation_router, tenancy_router,
                   client_router, access_router, me_router, idp_router, audit_router,
                   forms_router, reports_router, workflows_router, calendar_router,
                   cases_router, deliveries_router, signing_router, signing_callbacks,
                   sharing_router, sharing_gateway):
        app.include_router(router)
    ui.install(app)
    app.state.tracer_provider = setup_tracing(app, db.engine)
    app.state.meter_provider = setup_metrics("api")
    return app
