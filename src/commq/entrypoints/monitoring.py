"""What runs beside the queue in every process: worker heartbeats, alert rounds, and
(for `commq worker`) a small /metrics server.

The dispatcher reports heartbeats only while it is idle; the heartbeat task
here reports every worker of the process, busy or not, with its in-flight
count. Alert rounds run in every process and the store's lock lets one of
them evaluate at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine, Generator
from typing import Any

import uvicorn

from commq.application.alerts import AlertService
from commq.application.dispatcher import Dispatcher
from commq.entrypoints.alerting import alert_service
from commq.entrypoints.bootstrap import Container, new_worker_id
from commq.entrypoints.metrics_app import worker_metrics_app

log = logging.getLogger("commq.monitoring")

#: Longest time between two heartbeats of a worker.
MAX_HEARTBEAT_PERIOD = 5.0


class Monitoring:
    """Starts and stops the process's monitoring tasks."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._workers: dict[str, Dispatcher] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._server: _MetricsServer | None = None

    def dispatcher(self, concurrency: int | None = None) -> Dispatcher:
        """A worker loop whose heartbeats this process reports."""
        worker_id = new_worker_id()
        dispatcher = self._container.dispatcher(concurrency, worker_id)
        self._workers[worker_id] = dispatcher
        return dispatcher

    async def start(self, serve_metrics: bool = False) -> None:
        """Start heartbeats (if any worker), alert rounds (if any rule) and the metrics server."""
        if self._workers:
            self._spawn(self._heartbeats(), "commq-heartbeats")
        service = alert_service(self._container)
        if service.enabled:
            self._spawn(self._alert_rounds(service), "commq-alerts")
        port = self._container.settings.worker_metrics_port
        if serve_metrics and port is not None:
            self._server = _MetricsServer(self._container, port)
            await self._server.start()

    async def stop(self) -> None:
        """Stop every task; a stopped worker's heartbeat series is dropped."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        for worker_id in self._workers:
            self._container.metrics.forget_worker(worker_id)

    @property
    def metrics_port(self) -> int | None:
        """The port the worker's /metrics server listens on, once started."""
        return None if self._server is None else self._server.port

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def _heartbeats(self) -> None:
        period = min(self._container.settings.poll_interval, MAX_HEARTBEAT_PERIOD)
        metrics = self._container.metrics
        while True:
            for worker_id, dispatcher in self._workers.items():
                metrics.heartbeat(worker_id, dispatcher.in_flight)
            await asyncio.sleep(period)

    async def _alert_rounds(self, service: AlertService) -> None:
        interval = self._container.settings.alerts.interval
        while True:
            try:
                await service.evaluate()
            except Exception:
                log.exception("alert round failed; trying again next interval")
            await asyncio.sleep(interval)


class _MetricsServer:
    """The worker's /metrics over HTTP, served in the worker's own event loop."""

    def __init__(self, container: Container, port: int) -> None:
        host = container.settings.worker_metrics_host
        self._socket = socket.create_server((host, port))
        config = uvicorn.Config(
            worker_metrics_app(container), lifespan="off", ws="none", log_level="warning"
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._socket]), name="commq-worker-metrics"
        )
        log.info("worker metrics on port %d", self.port)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._socket.close()


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the worker that runs it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield
