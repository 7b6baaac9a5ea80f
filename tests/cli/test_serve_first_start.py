"""What `commq serve` (and so `make run`) tells its user on the first and later starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from serving import CLI, free_port


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COMMQ_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "COMMQ_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def _serve_once(env: dict[str, str], port: int) -> str:
    """Start `commq serve` on ``port``, wait until it answers, stop it; its stdout."""
    serve = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and serve.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=20)
    finally:
        if serve.poll() is None:
            serve.kill()
    out, _ = serve.communicate()
    return out


def test_first_start_prints_a_key_and_a_curl_for_the_port_served(env: dict[str, str]) -> None:
    port = free_port()
    first = _serve_once(env, port)
    assert "shown only this once" in first
    key = next(word for word in first.split() if word.startswith("cq_"))
    assert f"http://127.0.0.1:{port}/communication-queue/stats" in first
    again = _serve_once(env, port)
    assert "cq_" not in again
    assert "commq keys create --role admin" in again
    assert key  # the key itself is checked against the API in test_cli


def test_a_port_in_use_is_named_and_ends_serve_with_an_error_code(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*CLI, "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "address already in use" in done.stderr
    assert "Traceback" not in done.stderr
