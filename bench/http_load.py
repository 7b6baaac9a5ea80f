"""The real server (`commq serve --no-worker`) and a lean keep-alive HTTP/1.1 load client.

The client is raw asyncio streams with pre-built request bytes, so on a 2-core
machine the figure is the server's, not a Python HTTP library's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.workload import job_json, percentile, rate

PREFIX = "/communication-queue"
#: The pid of the server the last ``server()`` started (for profilers).
last_server_pid: int | None = None
_COMMQ = str(Path(sys.executable).parent / "commq")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(url: str, folder: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMQ_")}
    return env | {"COMMQ_DATABASE_URL": url, "COMMQ_OUTBOX_DIR": folder}


@contextmanager
def server(url: str) -> Iterator[tuple[int, str]]:
    """Run `commq serve --no-worker` on a free loopback port; yields (port, admin key)."""
    folder = tempfile.mkdtemp(prefix="commq_bench_srv_")
    env = _env(url, folder)
    made = subprocess.run(
        [_COMMQ, "keys", "create", "--role", "admin", "--name", "bench"],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = made.stdout.strip().splitlines()[-1]
    port = _free_port()
    log = Path(folder) / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [_COMMQ, "serve", "--no-worker", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    global last_server_pid
    last_server_pid = proc.pid
    try:
        _wait_ready(port, proc, log)
        yield port, key
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"commq serve exited with {proc.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("commq serve did not become ready in 60 s")


def request_bytes(method: str, path: str, key: str, body: object | None = None) -> bytes:
    """One HTTP/1.1 keep-alive request."""
    payload = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class Connection:
    """One keep-alive connection that sends a request and reads its whole response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to the server on loopback."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """(status, body) of one request."""
        status, _, body = await self.exchange(raw)
        return status, body

    async def exchange(self, raw: bytes) -> tuple[int, list[str], bytes]:
        """(status, header lines, body) of one request."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        return status, lines[1:], await self.reader.readexactly(length)

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        await self.writer.wait_closed()


async def load(
    port: int, raw: bytes, requests: int, clients: int, expect: int, budget: float = 30.0
) -> float:
    """Requests/s of up to ``requests`` identical requests over ``clients`` connections.

    The clients stop taking new requests after ``budget`` seconds.
    """
    left = [requests]
    bad: list[int] = []

    async def client() -> None:
        conn = await Connection.open(port)
        try:
            while left[0] > 0 and time.perf_counter() < deadline:
                left[0] -= 1
                status, _ = await conn.send(raw)
                if status != expect:
                    bad.append(status)
        finally:
            await conn.close()

    warm = await Connection.open(port)
    await warm.send(raw)
    await warm.close()
    started = time.perf_counter()
    deadline = started + budget
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    if bad:
        raise RuntimeError(f"{len(bad)} requests answered {sorted(set(bad))}, not {expect}")
    return rate(requests - left[0], elapsed)


async def http_enqueue(
    port: int, key: str, requests: int, batch: int, budget: float = 30.0, clients: int = 16
) -> float:
    """Jobs/s through POST /jobs (batch 1) or POST /jobs/batch with ``batch`` jobs each."""
    if batch == 1:
        raw = request_bytes("POST", f"{PREFIX}/jobs", key, job_json())
        return await load(port, raw, requests, clients, 201, budget)
    body = {"jobs": [job_json() for _ in range(batch)]}
    raw = request_bytes("POST", f"{PREFIX}/jobs/batch", key, body)
    return batch * await load(port, raw, requests, clients, 201, budget)


async def latencies(port: int, raw: bytes, count: int, budget: float) -> list[float]:
    """Milliseconds of up to ``count`` sequential requests (at least 20, within ``budget`` s)."""
    conn = await Connection.open(port)
    samples: list[float] = []
    try:
        await conn.send(raw)
        deadline = time.monotonic() + budget
        while len(samples) < count and (len(samples) < 20 or time.monotonic() < deadline):
            started = time.perf_counter()
            status, _ = await conn.send(raw)
            samples.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"answered {status}")
    finally:
        await conn.close()
    return samples


def p50_p99(samples: list[float]) -> tuple[float, float]:
    """The median and 99th percentile."""
    return percentile(samples, 50), percentile(samples, 99)
