"""A real commq server for browser tests and screenshots.

`commq serve` runs as a subprocess on 127.0.0.1 over a SQLite file, with a key
for each role made beforehand, the e-mail/SMS outbox, and webhooks allowed to
a local receiver whose answer a test can switch (an outage, then recovery).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from commq.adapters.store import SqlKeyStore, make_engine, migrate
from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.application.keys import KeyService
from commq.domain.jobs import Channel
from commq.domain.permissions import Role
from commq.domain.suppression import Suppression, SuppressionReason
from serving import free_port

CHROMIUM = Path(os.environ.get("COMMQ_TEST_CHROMIUM", "/usr/bin/chromium"))
#: Headless, sandbox-free (root in CI), and nothing that reaches beyond this machine.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEYS = {
    "admin": (Role.ADMIN, None),
    "acme_admin": (Role.ADMIN, "acme"),
    "acme_manager": (Role.MANAGER, "acme"),
    "acme_support": (Role.SUPPORT, "acme"),
    "acme_producer": (Role.PRODUCER, "acme"),
}


class Receiver:
    """A webhook receiver on 127.0.0.1 answering with a status the test sets."""

    def __init__(self) -> None:
        outer = self
        self.status = 200
        self.received = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.received += 1
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@dataclass
class LiveServer:
    """The running server, its keys and the webhook receiver."""

    url: str
    keys: dict[str, str]
    receiver: Receiver
    log: Path
    database_url: str
    _clients: dict[str, httpx.Client] = field(default_factory=dict)

    def api(self, who: str = "admin") -> httpx.Client:
        """A REST client authenticated with ``who``'s Bearer key."""
        if who not in self._clients:
            self._clients[who] = httpx.Client(
                base_url=f"{self.url}/communication-queue",
                headers={"Authorization": f"Bearer {self.keys[who]}"},
                timeout=10,
            )
        return self._clients[who]

    def enqueue(self, who: str = "acme_admin", **fields: Any) -> dict[str, Any]:
        """Enqueue one job (an e-mail unless ``fields`` say otherwise)."""
        body: dict[str, Any] = {
            "channel": "email",
            "recipient": "ana@example.com",
            "payload": {"subject": "Hello", "text": "Hi Ana"},
        }
        body.update(fields)
        response = self.api(who).post("/jobs", json=body)
        assert response.status_code in (200, 201), response.text
        job: dict[str, Any] = response.json()
        return job

    def webhook(self, who: str = "acme_admin", **fields: Any) -> dict[str, Any]:
        """Enqueue a webhook to the local receiver."""
        payload = {"body": {"event": "order.shipped"}}
        return self.enqueue(
            who, channel="webhook", recipient=self.receiver.url, payload=payload, **fields
        )

    def wait_for(self, job_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        """Poll the job until it reaches ``status`` (the worker runs in the server)."""
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self.api().get(f"/{job_id}").json()
            if job["status"] == status:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} stayed {job['status']}, not {status}")
            time.sleep(0.05)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


async def _make_keys(database_url: str) -> dict[str, str]:
    engine = make_engine(database_url)
    try:
        service = KeyService(SqlKeyStore(engine))
        return {
            name: (await service.create(name, role, business))[1]
            for name, (role, business) in KEYS.items()
        }
    finally:
        await engine.dispose()


def suppress(database_url: str, *recipients: str, business: str = "acme") -> None:
    """Put recipients on a business's suppression list, as a bounce or STOP would."""

    async def add() -> None:
        engine = make_engine(database_url)
        try:
            store = SqlSuppressionStore(engine)
            for recipient in recipients:
                sms = recipient.startswith("+")
                channel, reason = (
                    (Channel.SMS, SuppressionReason.STOP)
                    if sms
                    else (Channel.EMAIL, SuppressionReason.HARD_BOUNCE)
                )
                await store.add_suppression(Suppression(business, channel, recipient, reason))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, add()).result()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"commq serve exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"commq serve did not become ready: {log.read_text()[-3000:]}")


@contextmanager
def live_server(folder: Path, **env: str) -> Iterator[LiveServer]:
    """Run `commq serve` over a new database in ``folder`` until the block ends."""
    database_url = f"sqlite:///{folder / 'commq.db'}"
    migrate(database_url)
    # In a thread of its own: the caller may be inside pytest-asyncio's running loop.
    with ThreadPoolExecutor(1) as pool:
        keys = pool.submit(asyncio.run, _make_keys(database_url)).result()
    receiver = Receiver()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMQ_")},
        "COMMQ_DATABASE_URL": database_url,
        "COMMQ_PROVIDERS": "email=outbox,sms=outbox,webhook=webhook",
        "COMMQ_OUTBOX_DIR": str(folder / "outbox"),
        "COMMQ_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "COMMQ_MAX_ATTEMPTS": "1",
        "COMMQ_RETRY_BACKOFF_BASE": "0",
        "COMMQ_POLL_INTERVAL": "0.1",
        "COMMQ_SESSION_SECRET": "browser-test-secret-" + os.urandom(8).hex(),
        **env,
    }
    log = folder / "server.log"
    command = [str(Path(sys.executable).with_name("commq")), "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    server = LiveServer(url, keys, receiver, log, database_url)
    try:
        _wait_ready(url, process, log)
        yield server
    finally:
        server.close()
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        receiver.close()
