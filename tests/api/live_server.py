"""A real uvicorn server on 127.0.0.1, in the test's event loop, for streaming tests.

httpx's ASGITransport collects a whole response before returning it, so an
endless SSE stream or a WebSocket needs a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from commq.entrypoints.api.app import create_app
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.settings import Settings

from .conftest import KEYS


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The test runner owns the process's signals.
        yield


@dataclass
class LiveServer:
    """The running app, its base URLs and a key for every role in tests/api/conftest.py."""

    app: FastAPI
    http: str
    ws: str
    keys: dict[str, str]

    @property
    def container(self) -> Container:
        built: Container = self.app.state.container
        return built

    def as_(self, who: str) -> dict[str, str]:
        """Headers authenticating as one of the named keys."""
        return {"Authorization": f"Bearer {self.keys[who]}"}


@contextlib.asynccontextmanager
async def live_server(settings: Settings, **app_options: Any) -> AsyncIterator[LiveServer]:
    """Serve ``create_app(settings)`` until the block exits (startup bounded to 20 s)."""
    app = create_app(settings, run_worker=False, **app_options)
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                assert not task.done(), "the server stopped during startup"
                await asyncio.sleep(0.02)
        keys = {}
        container: Container = app.state.container
        for name, (role, business) in KEYS.items():
            _, keys[name] = await container.keys.create(name, role, business)
        yield LiveServer(app, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", keys)
    finally:
        server.should_exit = True
        async with asyncio.timeout(20):
            await task
        sock.close()
