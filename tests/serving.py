"""For tests that run commq (or a peer) as a process of its own on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

#: The CLI as `commq` runs it, from this interpreter.
CLI = [sys.executable, "-m", "commq.entrypoints.cli"]


def commq(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``args`` in ``env`` and wait for it (a minute at most)."""
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)


def free_port() -> int:
    """A port nothing listens on (a closed socket's): connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_ready(base: str, timeout: float = 30.0) -> None:
    """Until ``base``/readyz answers 200; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} did not become ready within {timeout:.0f} s")
