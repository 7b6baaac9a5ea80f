"""Real `commq worker` processes and what a crash or outage test reads back from the database.

A test starts workers with ``start_worker``, sends webhooks to a FakeReceiver, and
checks the queue's promise with ``every_delivery_accounted_for``: every job ended
completed, and a job that reached the receiver more than once carries, in its
history, the attempt that explains each extra delivery (a lease that ran out).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from commq.adapters.store import SqlJobStore, make_engine
from commq.adapters.store.engine import driver_url
from commq.domain.jobs import Channel, NewJob
from serving import CLI

#: Generous: a loaded 2-core CI machine starts a worker in a few seconds.
DEADLINE = 30.0


def worker_env(database_url: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a worker that may call webhooks on 127.0.0.1; ``settings``
    are COMMQ_ variables without the prefix (``LEASE_SECONDS="1"``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMQ_")}
    return env | {
        "COMMQ_DATABASE_URL": database_url,
        "COMMQ_OUTBOX_DIR": str(tmp_path / "outbox"),
        "COMMQ_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "COMMQ_POLL_INTERVAL": "0.1",
        "COMMQ_RETRY_BACKOFF_BASE": "0",
        "COMMQ_RETENTION_DAYS": "0",
        **{f"COMMQ_{name}": value for name, value in settings.items()},
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`commq worker` in ``log``'s folder (no commq.toml there), its output into ``log``;
    returns once it has started (its SIGTERM handler is in place)."""
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [*CLI, "worker"], env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: "worker started" in log.read_text() or worker.poll() is not None, log.name)
    except AssertionError:
        worker.kill()
        worker.wait()
        raise
    assert worker.poll() is None, log.read_text()
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, and its exit code; a worker that does not stop within 20 s is killed (None)."""
    if worker.poll() is not None:
        return worker.returncode
    worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        return None


def kill_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL: the process ends without a word, as on an OOM kill or a lost machine."""
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def enqueue_webhooks(database_url: str, url: str, count: int) -> list[str]:
    """Enqueue ``count`` webhooks to ``url`` (business acme); their ids."""

    async def enqueue() -> list[str]:
        engine = make_engine(database_url)
        try:
            made = await SqlJobStore(engine).enqueue(
                [NewJob("acme", Channel.WEBHOOK, url, {"body": {"n": i}}) for i in range(count)]
            )
        finally:
            await engine.dispose()
        return [item.job.id for item in made]

    return asyncio.run(enqueue())


class Queue:
    """Reads the jobs and their histories straight from the database.

    A fresh connection per read, so a test may terminate every other connection of the
    database; on SQLite the reads take no write lock (no BEGIN IMMEDIATE).
    """

    def __init__(self, database_url: str) -> None:
        self._engine = create_engine(driver_url(database_url, sync=True), poolclass=NullPool)

    def close(self) -> None:
        self._engine.dispose()

    def statuses(self) -> Counter[str]:
        """How many jobs are in each status."""
        with self._engine.connect() as conn:
            rows = conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
            return Counter({status: count for status, count in rows})

    def settled(self, count: int) -> bool:
        """Whether ``count`` jobs exist and none is pending or processing."""
        statuses = self.statuses()
        return sum(statuses.values()) == count and not statuses["pending"] + statuses["processing"]

    def outcomes(self) -> dict[str, list[str]]:
        """Each job's attempt outcomes, in order."""
        query = "SELECT j.id, a.outcome FROM jobs j LEFT JOIN attempts a ON a.job_id = j.id"
        found: dict[str, list[str]] = {}
        with self._engine.connect() as conn:
            for job_id, outcome in conn.execute(text(f"{query} ORDER BY j.id, a.seq")):
                found.setdefault(job_id, [])
                if outcome is not None:
                    found[job_id].append(outcome)
        return found


def every_delivery_accounted_for(
    outcomes: dict[str, list[str]], deliveries: Counter[str]
) -> list[str]:
    """The promise after a crash or an outage, as a list of what broke it (empty: kept).

    Every job completed once (its last attempt succeeded, once), nothing reached the
    receiver that was never enqueued, and each delivery of a job is one of its
    attempts: the succeeded one, or a ``lost`` one (its worker stopped reporting, so
    commq could not know whether it had gone out).
    """
    broken = [f"{job_id}: never enqueued" for job_id in deliveries if job_id not in outcomes]
    for job_id, history in outcomes.items():
        got = deliveries[job_id]
        if history.count("succeeded") != 1 or history[-1] != "succeeded":
            broken.append(f"{job_id}: history {history}, delivered {got}x")
        elif not 1 <= got <= 1 + history.count("lost"):
            broken.append(f"{job_id}: delivered {got}x, history {history}")
    return broken
