"""The real `commq serve` stops on SIGTERM although a live stats stream is still open."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from serving import CLI, free_port, wait_until_ready


def test_sigterm_ends_serve_within_the_grace_despite_an_open_stream(
    sqlite_url: str, tmp_path: Path
) -> None:
    code, took, errors = _stop_serve_while_streaming(sqlite_url, tmp_path, grace=1)
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert code in (0, -signal.SIGTERM), errors
    assert "Application shutdown complete" in errors
    assert took < 8, f"serve took {took:.1f} s to stop"


def test_sigterm_ends_open_streams_at_once_without_a_traceback(
    sqlite_url: str, tmp_path: Path
) -> None:
    # An open dashboard follows /stats/stream: Ctrl-C must not wait out the whole
    # grace for it, nor cut it and log the cancelled request's traceback.
    code, took, errors = _stop_serve_while_streaming(sqlite_url, tmp_path, grace=10)
    assert code in (0, -signal.SIGTERM), errors
    assert "Traceback" not in errors and "ERROR" not in errors, errors
    assert took < 5, f"serve took {took:.1f} s to stop"


def _stop_serve_while_streaming(
    sqlite_url: str, tmp_path: Path, grace: float
) -> tuple[int, float, str]:
    """SIGTERM a `commq serve` that has a stats stream open: (exit code, seconds, stderr)."""
    env = {
        **os.environ,
        "COMMQ_DATABASE_URL": sqlite_url,
        "COMMQ_OUTBOX_DIR": str(tmp_path / "outbox"),
        "COMMQ_SHUTDOWN_GRACE": str(grace),
    }
    created = subprocess.run(
        [*CLI, "keys", "create", "--role", "support", "--name", "wall", "--business", "acme"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_ready(base)
        url = f"{base}/communication-queue/stats/stream"
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream("GET", url, headers=headers, timeout=20) as stream:
            lines = stream.iter_lines()
            assert "event: stats" in (next(lines) for _ in range(10))
            stopping = time.monotonic()
            serve.send_signal(signal.SIGTERM)
            code = serve.wait(timeout=20)
        took = time.monotonic() - stopping
    finally:
        if serve.poll() is None:
            serve.kill()
        _, errors = serve.communicate()
    return code, took, errors
