"""GET /metrics: Prometheus text, outside the prefix, guarded by COMMQ_METRICS_TOKEN if set."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from commq.adapters.metrics import CONTENT_TYPE, QueueGauges, render
from commq.adapters.store.sql_metrics_store import SqlMetricsStore
from commq.entrypoints.api.dependencies import container
from commq.entrypoints.api.problems import problem
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.metrics_app import TOKEN_REQUIRED, scrape_allowed

log = logging.getLogger("commq.api")
router = APIRouter(tags=["operations"])
App = Annotated[Container, Depends(container)]


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, 401: {"description": "Token required"}},
)
async def metrics(request: Request, app: App) -> Response:
    """Jobs by status and channel, oldest pending age, sends, durations, queue wait, heartbeats.

    The job gauges are read from the database at scrape time; the rest are this
    process's own counters and histograms.
    """
    if not scrape_allowed(app.settings.metrics_token, request.headers.get("authorization")):
        return problem(401, TOKEN_REQUIRED, headers={"WWW-Authenticate": 'Bearer realm="commq"'})
    try:
        rows, oldest = await SqlMetricsStore(app.engine).job_gauges()
        circuits = await app.circuit_snapshot(None)
    except Exception as exc:  # the scrape fails visibly (up == 0), never as a 500
        log.warning("metrics: database unavailable: %s", type(exc).__name__)
        return problem(503, f"database unavailable: {type(exc).__name__}")
    return Response(
        render(app.metrics.registry, QueueGauges(rows, oldest, _states(circuits))),
        media_type=CONTENT_TYPE,
    )


def _states(circuits: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return [(provider, str(shown["state"])) for provider, shown in sorted(circuits.items())]
