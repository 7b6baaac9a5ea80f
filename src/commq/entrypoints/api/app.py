"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from commq.adapters.store import check_schema, migrate
from commq.entrypoints.api import health_routes, jobs_routes, problems
from commq.entrypoints.api.guard import GuardMiddleware
from commq.entrypoints.bootstrap import Container, build
from commq.entrypoints.settings import Settings

log = logging.getLogger("commq.api")

DESCRIPTION = """A durable communication queue: enqueue e-mail, SMS and webhook jobs, watch them,
and steer them. Authenticate with `Authorization: Bearer <api key>`."""


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
        worker = None
        if run_worker:
            dispatcher = container.dispatcher()
            worker = asyncio.create_task(dispatcher.run(), name="commq-worker")
        try:
            yield
        finally:
            if worker is not None:
                dispatcher.stop()
                await worker
            await container.close()

    app = FastAPI(title="commq", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    problems.install(app)
    app.include_router(health_routes.router)
    app.include_router(jobs_routes.router)

    async def authenticate(key: str):  # type: ignore[no-untyped-def]
        container: Container = app.state.container
        return await container.keys.authenticate(key)

    app.add_middleware(GuardMiddleware, authenticate=authenticate)
    return app
