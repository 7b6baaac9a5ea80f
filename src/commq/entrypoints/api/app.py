"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline

from commq.adapters.store import check_schema, migrate
from commq.entrypoints.api import (
    alerts_routes,
    health_routes,
    jobs_routes,
    live_routes,
    metrics_routes,
    operations_routes,
    problems,
    suppression_routes,
    webhook_routes,
)
from commq.entrypoints.api.guard import GuardMiddleware
from commq.entrypoints.bootstrap import Container, build
from commq.entrypoints.dashboard import install as install_dashboard
from commq.entrypoints.maintenance import Maintenance
from commq.entrypoints.monitoring import Monitoring
from commq.entrypoints.settings import Settings

log = logging.getLogger("commq.api")

DESCRIPTION = """A durable communication queue: enqueue e-mail, SMS and webhook jobs, watch them,
and steer them. Authenticate with `Authorization: Bearer <api key>`."""


#: FastAPI's built-in OpenTelemetry tracing, metrics and logs, all off.
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    settings: Settings, *, run_worker: bool = True, apply_migrations: bool = True
) -> FastAPI:
    """An app that builds its container at startup and closes it at shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if apply_migrations:
            await asyncio.to_thread(migrate, settings.database_url)
        else:
            await asyncio.to_thread(check_schema, settings.database_url)
        container = await build(settings)
        app.state.container = container
        app.state.stats_hub = live_routes.make_hub(container)
        monitoring = Monitoring(container)
        worker = None
        if run_worker:
            dispatcher = monitoring.dispatcher()
            worker = asyncio.create_task(dispatcher.run(), name="commq-worker")
        await monitoring.start()
        maintenance = Maintenance(container)
        maintenance.start()
        try:
            yield
        finally:
            await maintenance.stop()
            if worker is not None:
                dispatcher.stop()
                await worker
            await monitoring.stop()
            await app.state.stats_hub.close()
            await container.close()

    app = FastAPIOffline(
        # Swagger UI's and ReDoc's scripts from the installed package: FastAPI's own
        # pages fetch them from a CDN, which leaves /docs blank on a closed network.
        static_url="/docs/assets",
        title="commq",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # commq reports through /metrics (Prometheus). FastAPI's OpenTelemetry hooks
        # would look up the providers (and the environment) on every request.
        telemetry=_NO_TELEMETRY,
    )
    problems.install(app)
    app.include_router(jobs_routes.enqueue_router)
    app.include_router(health_routes.router)
    app.include_router(metrics_routes.router)
    # Before jobs_routes, whose GET /{job_id} would otherwise take /alerts.
    app.include_router(alerts_routes.router)
    app.include_router(live_routes.router)
    app.include_router(suppression_routes.router)  # before jobs_routes too (/{job_id})
    app.include_router(webhook_routes.router)
    # Before jobs_routes too: /failed/export.csv, /audit, /stats/history, POST /failed/retry.
    app.include_router(operations_routes.router)
    app.include_router(jobs_routes.router)

    async def authenticate(key: str):  # type: ignore[no-untyped-def]
        container: Container = app.state.container
        return await container.keys.authenticate(key)

    sessions = install_dashboard(app, settings)
    app.add_middleware(GuardMiddleware, authenticate=authenticate, cookies=sessions)
    return app
