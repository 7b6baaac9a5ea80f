"""Workers that die or stall at the worst moment: real `commq worker` processes, a real
webhook receiver on 127.0.0.1, and the database read back afterwards.

- SIGKILL after the receiver took the message and before the worker recorded it.
- SIGSTOP mid-send for longer than the lease (a "zombie"): another worker takes the
  job over, and the zombie, resumed, cannot write over that worker's result.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from fakes.modes import Recorded
from fakes.receiver import FakeReceiver

from .processes import (
    Queue,
    enqueue_webhooks,
    every_delivery_accounted_for,
    kill_worker,
    start_worker,
    stop_worker,
    wait_for,
    worker_env,
)


@pytest.fixture
def queue(database_url: str) -> Iterator[Queue]:
    reader = Queue(database_url)
    yield reader
    reader.close()


class WriteBlocker:
    """Makes a worker's next write to a job wait, from a connection of this process:
    on SQLite by holding the write lock, on PostgreSQL by locking the job's row."""

    def __init__(self, database_url: str) -> None:
        self._url = make_url(database_url)
        self._conn: Any = None

    def hold(self, job_id: str) -> None:
        if self._url.get_backend_name() == "sqlite":
            self._conn = sqlite3.connect(
                str(self._url.database), timeout=10, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("BEGIN IMMEDIATE")
            return
        self._conn = psycopg.connect(self._url.render_as_string(hide_password=False))
        self._conn.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", [job_id])

    def release(self) -> None:
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            self._conn = None

    def result_write_waiting(self) -> bool:
        """PostgreSQL: whether a worker's result write has reached the server and waits."""
        with psycopg.connect(self._url.render_as_string(hide_password=False)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%json_to_recordset%'"
            ).fetchone()
        return row is not None and row[0] > 0


def test_a_worker_killed_after_the_provider_took_the_message_leaves_no_job_behind(
    database_url: str, tmp_path: Path, receiver: FakeReceiver, queue: Queue
) -> None:
    [job_id] = enqueue_webhooks(database_url, receiver.url, 1)
    blocker = WriteBlocker(database_url)
    answered = threading.Event()

    def block_the_result_write(request: Recorded) -> None:
        if not answered.is_set():
            blocker.hold(job_id)
            answered.set()

    receiver.before_answer = block_the_result_write
    env = worker_env(database_url, tmp_path, LEASE_SECONDS="1")
    first = start_worker(env, tmp_path / "first.log")
    try:
        wait_for(answered.is_set, "the first worker's webhook")
        wait_for(lambda: receiver.requests[0].status == 200, "the receiver's 200")
        postgresql = make_url(database_url).get_backend_name() == "postgresql"
        if postgresql:
            wait_for(blocker.result_write_waiting, "the result write to reach the server")
        kill_worker(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        blocker.release()
    second = start_worker(env, tmp_path / "second.log")
    try:
        wait_for(lambda: queue.settled(1), "the job to be settled")
    finally:
        assert stop_worker(second) == 0, (tmp_path / "second.log").read_text()

    outcomes = queue.outcomes()
    assert every_delivery_accounted_for(outcomes, receiver.deliveries()) == []
    if postgresql:
        # The statement was in the server's hands: it commits although its sender died.
        assert (outcomes[job_id], receiver.deliveries()[job_id]) == (["succeeded"], 1)
    else:
        # The write died with the process: after the lease the job is sent again (the
        # receiver sees the same webhook-id twice), and its history says why.
        assert (outcomes[job_id], receiver.deliveries()[job_id]) == (["lost", "succeeded"], 2)


@pytest.mark.postgres
def test_a_paused_worker_whose_lease_ran_out_cannot_write_over_the_worker_that_took_over(
    postgres_url: str, tmp_path: Path, receiver: FakeReceiver
) -> None:
    # PostgreSQL only: on SQLite a process paused while it holds the write lock (a lease
    # extension, a millisecond) would stall every other process with it.
    queue = Queue(postgres_url)
    [job_id] = enqueue_webhooks(postgres_url, receiver.url, 1)
    first_request, let_it_answer = threading.Event(), threading.Event()

    def hold_the_first_answer(request: Recorded) -> None:
        if not first_request.is_set():
            first_request.set()
            let_it_answer.wait(timeout=30)

    receiver.before_answer = hold_the_first_answer
    env = worker_env(postgres_url, tmp_path, LEASE_SECONDS="1")
    zombie = start_worker(env, tmp_path / "zombie.log")
    successor = None
    try:
        wait_for(first_request.is_set, "the first worker's webhook")
        zombie.send_signal(signal.SIGSTOP)
        successor = start_worker(env, tmp_path / "successor.log")
        wait_for(lambda: queue.settled(1), "the successor to complete the job")
        assert queue.outcomes()[job_id] == ["lost", "succeeded"]

        # The zombie wakes up to a 200 for a job that is no longer its own.
        let_it_answer.set()
        zombie.send_signal(signal.SIGCONT)
        wait_for(
            lambda: "lease was taken over" in (tmp_path / "zombie.log").read_text(),
            "the zombie to find its result refused",
        )
        assert queue.outcomes()[job_id] == ["lost", "succeeded"]
        assert receiver.deliveries()[job_id] == 2  # the zombie's, then the successor's

        # And it goes on working.
        assert stop_worker(successor) == 0, (tmp_path / "successor.log").read_text()
        [later] = enqueue_webhooks(postgres_url, receiver.url, 1)
        wait_for(lambda: queue.settled(2), "the zombie to send a later job")
        assert (queue.outcomes()[later], receiver.deliveries()[later]) == (["succeeded"], 1)
    finally:
        let_it_answer.set()
        zombie.send_signal(signal.SIGCONT)
        code = stop_worker(zombie)
        if successor is not None:
            stop_worker(successor)
        queue.close()
    assert code == 0, (tmp_path / "zombie.log").read_text()
