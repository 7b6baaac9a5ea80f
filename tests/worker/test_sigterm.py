"""The real `commq worker` process stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _commq(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commq.entrypoints.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_worker_drains_then_exits_zero_on_sigterm(sqlite_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COMMQ_DATABASE_URL": sqlite_url,
        "COMMQ_OUTBOX_DIR": str(tmp_path),
        "COMMQ_POLL_INTERVAL": "0.05",
    }
    for i in range(3):
        _commq(
            "enqueue",
            "--channel",
            "sms",
            "--to",
            f"+1415555010{i}",
            "--business",
            "acme",
            "--text",
            "hello",
            env=env,
        )
    worker = subprocess.Popen(
        [sys.executable, "-m", "commq.entrypoints.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(list(tmp_path.glob("*.sms.json"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.communicate()
    assert code == 0
    stats = json.loads(_commq("stats", "--json", env=env).stdout)
    assert stats["completed"] == 3 and stats["processing"] == 0
