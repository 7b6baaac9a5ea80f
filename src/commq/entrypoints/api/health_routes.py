"""Probes outside the prefix: liveness and readiness (/metrics is in metrics_routes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
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
