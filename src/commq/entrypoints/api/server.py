"""Serving the app with uvicorn, ending its live streams as soon as shutdown begins."""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

#: uvicorn's exit code when the server could not start (a port in use, a failed startup).
STARTUP_FAILURE = 3


class CommqServer(uvicorn.Server):
    """uvicorn's server that ends the app's live stats streams before waiting for connections.

    uvicorn lets open responses finish for up to its graceful-shutdown timeout, then
    cancels them. A stats stream (an open dashboard) never finishes on its own, so
    without this every Ctrl-C waited out the whole grace and logged a traceback.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub = getattr(self._app.state, "stats_hub", None)
        if hub is not None:
            hub.end_streams()
        await super().shutdown(sockets)


def serve_app(app: FastAPI, host: str, port: int, grace: float) -> bool:
    """Serve ``app`` until SIGINT or SIGTERM; False when it never started."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        # Annotated int, but only ever given to asyncio.wait_for: fractional seconds work.
        timeout_graceful_shutdown=grace,  # type: ignore[arg-type]
    )
    server = CommqServer(config, app)
    server.run()
    return server.started
