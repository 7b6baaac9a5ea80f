"""Beside the worker: heartbeats for busy and idle workers, and the worker's own /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from commq.adapters.metrics import render
from commq.domain.audit import Principal
from commq.domain.jobs import Channel, NewJob
from commq.domain.permissions import Role
from commq.entrypoints.bootstrap import Container, build
from commq.entrypoints.monitoring import Monitoring
from commq.entrypoints.settings import Settings, parse_providers
from serving import free_port


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=sqlite_url,
        providers=parse_providers("email=outbox,sms=outbox,webhook=outbox"),
        outbox_dir=tmp_path / "outbox",
        poll_interval=0.05,
        worker_metrics_port=0,
        metrics_token="tok",
    )


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    built = await build(settings)
    yield built
    await built.close()


def heartbeats(text: str) -> dict[str, float]:
    return {
        sample.labels["worker"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "commq_worker_heartbeat_timestamp_seconds"
    }


async def test_each_worker_of_the_process_beats_and_its_series_ends_with_it(
    container: Container,
) -> None:
    monitoring = Monitoring(container)
    workers = [monitoring.dispatcher(), monitoring.dispatcher()]
    await monitoring.start()
    try:
        await asyncio.sleep(0.2)
        beats = heartbeats(render(container.metrics.registry).decode())
        assert len(beats) == len(workers)
        assert all(abs(at - time.time()) < 5 for at in beats.values())
    finally:
        await monitoring.stop()
    assert heartbeats(render(container.metrics.registry).decode()) == {}


@pytest.fixture
def slow_receiver() -> Iterator[tuple[str, threading.Event]]:
    """A webhook receiver on 127.0.0.1 that answers only once released."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            release.wait(timeout=20)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", release
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def test_a_busy_worker_keeps_beating_with_its_jobs_in_flight(
    settings: Settings, slow_receiver: tuple[str, threading.Event]
) -> None:
    url, release = slow_receiver
    busy = replace(
        settings,
        providers=parse_providers("webhook=webhook"),
        webhook_allowed_hosts="127.0.0.1",
    )
    container = await build(busy)
    admin = Principal("k", "ops", Role.ADMIN, None)
    await container.queue.enqueue(admin, [NewJob("acme", Channel.WEBHOOK, url, {"body": {}})])
    monitoring = Monitoring(container)
    dispatcher = monitoring.dispatcher()
    await monitoring.start()
    running = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(500):
            if dispatcher.in_flight == 1:
                break
            await asyncio.sleep(0.02)
        first = heartbeats(render(container.metrics.registry).decode())
        await asyncio.sleep(0.3)
        text = render(container.metrics.registry).decode()
        [(worker, later)] = heartbeats(text).items()
        assert later > first[worker]
        assert f'commq_worker_in_flight{{worker="{worker}"}} 1.0' in text
    finally:
        release.set()
        dispatcher.stop()
        await running
        await monitoring.stop()
        await container.close()


async def test_the_worker_serves_its_own_metrics_behind_the_token(container: Container) -> None:
    monitoring = Monitoring(container)
    monitoring.dispatcher()
    await monitoring.start(serve_metrics=True)
    try:
        assert monitoring.metrics_port
        url = f"http://127.0.0.1:{monitoring.metrics_port}/metrics"
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(url)).status_code == 401
            response = await client.get(url, headers={"Authorization": "Bearer tok"})
        assert response.status_code == 200
        assert len(heartbeats(response.text)) == 1
        # Database gauges come from the API only, so no job is counted twice.
        assert "commq_jobs" not in response.text
    finally:
        await monitoring.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(url)


async def test_without_a_port_the_worker_serves_nothing(container: Container) -> None:
    monitoring = Monitoring(replace_settings(container, worker_metrics_port=None))
    await monitoring.start(serve_metrics=True)
    assert monitoring.metrics_port is None
    await monitoring.stop()


def replace_settings(container: Container, **changes: object) -> Container:
    container.settings = replace(container.settings, **changes)  # type: ignore[arg-type]
    return container


def test_commq_worker_serves_metrics_and_still_stops_on_sigterm(
    sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "COMMQ_DATABASE_URL": sqlite_url,
        "COMMQ_OUTBOX_DIR": str(tmp_path),
        "COMMQ_POLL_INTERVAL": "0.05",
        "COMMQ_WORKER_METRICS_PORT": str(port),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "commq.entrypoints.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        text = ""
        deadline = time.monotonic() + 20
        while not heartbeats(text) and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.ConnectError:
                continue
        assert len(heartbeats(text)) == 1
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
        _, errors = worker.communicate()
    assert code == 0, errors
