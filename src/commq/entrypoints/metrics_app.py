"""Prometheus exposition over HTTP: the token rule, and the worker's own /metrics app.

`commq serve` answers /metrics in its API (database gauges plus its own
worker's metrics); a `commq worker` process has no API, so with
COMMQ_WORKER_METRICS_PORT set it serves its own sends, durations and
heartbeats on that port. The database gauges (``commq_jobs``, oldest pending
age) come only from the API, so summing over every scraped process never
counts a job twice.
"""

from __future__ import annotations

import hmac

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from commq.adapters.metrics import CONTENT_TYPE, render
from commq.entrypoints.bootstrap import Container

#: The 401 detail when COMMQ_METRICS_TOKEN is set and the scrape does not send it.
TOKEN_REQUIRED = "COMMQ_METRICS_TOKEN is set: send it as a Bearer token"


def scrape_allowed(token: str | None, authorization: str | None) -> bool:
    """Whether a scrape may read metrics: no token configured, or the right Bearer token."""
    if not token:
        return True
    # The scheme is case-insensitive (RFC 9110), as the API's own key check reads it.
    scheme, _, sent = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), sent.strip().encode())


def worker_metrics_app(container: Container) -> Starlette:
    """A one-route app serving this process's registry at /metrics."""

    async def metrics(request: Request) -> Response:
        if not scrape_allowed(
            container.settings.metrics_token, request.headers.get("authorization")
        ):
            return Response(
                TOKEN_REQUIRED, 401, headers={"WWW-Authenticate": 'Bearer realm="commq"'}
            )
        return Response(render(container.metrics.registry), media_type=CONTENT_TYPE)

    return Starlette(routes=[Route("/metrics", metrics)])
