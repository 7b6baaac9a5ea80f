"""Probes outside the prefix: liveness, readiness, metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from commq.entrypoints.api.dependencies import container
from commq.entrypoints.api.problems import problem
from commq.entrypoints.bootstrap import Container

router = APIRouter(tags=["operations"])
App = Annotated[Container, Depends(container)]


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers")
async def readyz(app: App) -> JSONResponse:
    try:
        async with app.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", never a 500
        return problem(503, f"database unavailable: {type(exc).__name__}")
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, app: App) -> Response:
    token = app.settings.metrics_token
    if token and request.headers.get("authorization") != f"Bearer {token}":
        return problem(401, "COMMQ_METRICS_TOKEN is set: send it as a Bearer token")
    stats = await app.jobs.stats(None)
    lines = ["# HELP commq_jobs Jobs by status.", "# TYPE commq_jobs gauge"]
    for status in ("pending", "processing", "completed", "failed", "cancelled"):
        lines.append(f'commq_jobs{{status="{status}",channel="all"}} {getattr(stats, status)}')
    lines += [
        "# HELP commq_oldest_pending_age_seconds Age of the oldest due pending job.",
        "# TYPE commq_oldest_pending_age_seconds gauge",
        f"commq_oldest_pending_age_seconds {stats.oldest_pending_age_seconds}",
    ]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
