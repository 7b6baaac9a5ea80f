"""Scenarios on the 1,000,000-job table: f (reads over HTTP), d (dispatch), g (bulk retry)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

from bench.commq_scenarios import fill_backlog
from bench.http_load import PREFIX, Connection, latencies, p50_p99, request_bytes, server
from bench.inspect_db import as_datetime, db_now, execute, fetch
from bench.results import Results

RETRY_PATH = f"{PREFIX}/failed/retry"
#: Other due jobs drained during g: enough to outlast the rate measured before the retry
#: and the retry itself at 12,000 jobs/s (80,000 ran out when the worker's start-up and
#: the window before the retry were a fixed 8 s).
OTHER_BACKLOG = 120_000
#: Seconds of the worker's rate measured before the retry, once it is sending.
BEFORE_WINDOW = 2.0


async def _deep_cursor(port: int, key: str, depth: int, page: int = 50) -> str:
    """The cursor of GET /failed after ``depth`` rows, walked page by page via Link headers."""
    conn = await Connection.open(port)
    cursor = ""
    try:
        for _ in range(depth // page):
            query = f"limit={page}" + (f"&cursor={cursor}" if cursor else "")
            status, headers, _ = await conn.exchange(
                request_bytes("GET", f"{PREFIX}/failed?{query}", key)
            )
            link = next((h for h in headers if h.lower().startswith("link:")), None)
            if status != 200 or link is None:
                raise RuntimeError(f"/failed walk stopped: status {status}, link {link!r}")
            url = link.split("<", 1)[1].split(">", 1)[0]
            cursor = parse_qs(urlsplit(url).query)["cursor"][0]
    finally:
        await conn.close()
    return cursor


async def reads(url: str, backend: str, results: Results, samples: int, budget: float) -> None:
    """p50/p99 of GET /stats, GET /failed?limit=50 and the page 10,000 rows deep."""
    with server(url) as (port, key):
        cursor = await _deep_cursor(port, key, 10_000)
        paths = {
            "stats_1m": f"{PREFIX}/stats",
            "failed_page_1m": f"{PREFIX}/failed?limit=50",
            "failed_page_deep_1m": f"{PREFIX}/failed?limit=50&cursor={cursor}",
        }
        for scenario, path in paths.items():
            got = await latencies(port, request_bytes("GET", path, key), samples, budget)
            p50, p99 = p50_p99(got)
            results.add(scenario, backend, "p50_ms", p50)
            results.add(scenario, backend, "p99_ms", p99)


def retry_endpoint_exists(url: str) -> bool:
    """Whether the running code serves POST /communication-queue/failed/retry."""
    with server(url) as (port, key):
        return asyncio.run(_has_path(port, key))


async def _has_path(port: int, key: str) -> bool:
    conn = await Connection.open(port)
    try:
        status, body = await conn.send(request_bytes("GET", "/openapi.json", key))
    finally:
        await conn.close()
    return status == 200 and "post" in json.loads(body).get("paths", {}).get(RETRY_PATH, {})


def _completed_between(url: str, start: object, end: object) -> int:
    p = "?" if url.startswith("sqlite") else "%s"
    query = f"SELECT count(*) FROM jobs WHERE completed_at >= {p} AND completed_at < {p}"
    return int(fetch(url, query, (start, end))[0][0])


def _seconds(url: str, start: object, end: object) -> float:
    return (as_datetime(end) - as_datetime(start)).total_seconds()


def bulk_retry(url: str, backend: str, results: Results, cap: float) -> None:
    """g: retry 100,000 failed jobs over HTTP while a worker drains other due jobs.

    Before: 50,000 more completed jobs are marked failed (100,000 failed in all) and a
    fresh backlog of OTHER_BACKLOG jobs is due. Records the call's seconds and the
    dispatch rate during it.
    """
    execute(
        url,
        "UPDATE jobs SET status = 'failed', failed_at = completed_at, completed_at = NULL "
        "WHERE id IN (SELECT id FROM jobs WHERE status = 'completed' ORDER BY id LIMIT 50000)",
    )
    filled_from = db_now(url)
    asyncio.run(fill_backlog(url, OTHER_BACKLOG))
    with server(url) as (port, key):
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.worker_proc", "drain", url, str(cap)],
            stdout=subprocess.DEVNULL,
        )
        try:
            _until_sending(url, filled_from, timeout=30)
            before_start = db_now(url)
            time.sleep(BEFORE_WINDOW)
            start = db_now(url)
            status, body = asyncio.run(_post_retry(port, key))
            end = db_now(url)
            left = _still_pending(url, filled_from)
        finally:
            worker.terminate()
            worker.wait(60)
    if status != 200:
        results.note(f"bulk_retry_100k/{backend}: answered {status}: {body[:200]!r}")
        return
    during = _completed_between(url, start, end) / max(_seconds(url, start, end), 1e-6)
    before = _completed_between(url, before_start, start) / max(
        _seconds(url, before_start, start), 1e-6
    )
    results.add("bulk_retry_100k", backend, "seconds", _seconds(url, start, end))
    results.add("bulk_retry_100k", backend, "jobs_per_s", during)
    kept = during / max(before, 1e-6)
    results.checked[f"bulk_retry_kept/{backend}"] = kept
    results.note(f"bulk_retry_100k/{backend}: dispatch kept {kept:.0%} of its rate")
    if left == 0:
        results.note(
            f"bulk_retry_100k/{backend}: the other jobs ran out before the retry ended,"
            " so the rate during it is understated"
        )


def _until_sending(url: str, since: object, timeout: float) -> None:
    """Wait until the worker has completed a job made since ``since`` (its start-up done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _completed_between(url, since, db_now(url)):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the worker completed no job in {timeout:.0f} s")


def _still_pending(url: str, since: object) -> int:
    p = "?" if url.startswith("sqlite") else "%s"
    query = f"SELECT count(*) FROM jobs WHERE status = 'pending' AND created_at >= {p}"
    return int(fetch(url, query, (since,))[0][0])


async def _post_retry(port: int, key: str) -> tuple[int, bytes]:
    conn = await Connection.open(port)
    try:
        return await conn.send(request_bytes("POST", RETRY_PATH, key, {"dryRun": False}))
    finally:
        await conn.close()
