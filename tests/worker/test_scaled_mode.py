"""Scaled mode on PostgreSQL: an API process without a worker, and a separate worker
process that is woken by LISTEN/NOTIFY rather than by polling."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving import CLI, free_port, wait_until_ready

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(postgres_url: str, tmp_path: Path) -> dict[str, str]:
    # A 60 s poll: a pickup within seconds can only come from a NOTIFY.
    return {
        **os.environ,
        "COMMQ_DATABASE_URL": postgres_url,
        "COMMQ_POLL_INTERVAL": "60",
        "COMMQ_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.fixture
def services(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    subprocess.run([*CLI, "migrate"], env=env, check=True, capture_output=True, timeout=60)
    key = (
        subprocess.run(
            [*CLI, "keys", "create", "--role", "admin", "--name", "ops", "--business", "acme"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    api = _start(["serve", "--no-worker", "--port", str(port)], env, tmp_path / "api.log")
    worker = _start(["worker"], env, tmp_path / "worker.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base)
        time.sleep(1.0)  # the worker reaches its idle wait
        yield base, key
    finally:
        assert _stop(worker) == 0, (tmp_path / "worker.log").read_text()
        _stop(api)


def test_a_job_enqueued_through_the_api_is_sent_by_a_separate_woken_worker(
    services: tuple[str, str],
) -> None:
    base, key = services
    headers = {"Authorization": f"Bearer {key}"}
    job = httpx.post(
        f"{base}/communication-queue/jobs",
        json={"channel": "sms", "recipient": "+14155550100", "payload": {"body": "hi"}},
        headers=headers,
        timeout=10,
    ).json()
    enqueued = time.monotonic()
    status = "pending"
    while status != "completed" and time.monotonic() - enqueued < 10:
        time.sleep(0.05)
        status = httpx.get(f"{base}/communication-queue/{job['id']}", headers=headers).json()[
            "status"
        ]
    assert status == "completed"
    assert time.monotonic() - enqueued < 10  # far below the 60 s poll interval
