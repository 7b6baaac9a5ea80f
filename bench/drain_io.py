"""What one dispatched job costs PostgreSQL, on a fresh backlog or on the million-job table.

    python -m bench.drain_io backlog [--jobs 50000]   # c's kind of table, N due jobs
    python -m bench.drain_io million                  # d: the 50,000 pending of 1M

Drains the due jobs with the benchmark's worker process (``bench.worker_proc``) and
prints, per job: the worker's and the server's CPU (as ``bench.cpu_split``), the
buffers read or hit in each table and index (``pg_statio_user_*``), the WAL written
and its full-page images (``pg_stat_wal``); and the worker's garbage-collector time and
peak RSS, and the completions in each second of the drain. Run both with the same N
to tell what the million-job table adds to each job (d drains 50,000 jobs where c
drains 20,000, so ``--jobs 50000`` compares like with like).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time

import psycopg

from bench import big_table
from bench import commq_scenarios as cq
from bench.cpu_split import postgres_cpu_seconds
from bench.databases import database

_BUFFERS = """
SELECT 'index ' || indexrelname, idx_blks_hit + idx_blks_read FROM pg_statio_user_indexes
UNION ALL
SELECT 'table ' || relname, heap_blks_hit + heap_blks_read FROM pg_statio_user_tables
"""
_WAL = "SELECT wal_bytes, wal_fpi FROM pg_stat_wal"
_PER_SECOND = """
WITH done AS (SELECT completed_at, min(completed_at) OVER () AS first FROM jobs
              WHERE completed_at >= %s)
SELECT count(*) FROM done GROUP BY floor(extract(epoch FROM completed_at - first))
ORDER BY floor(extract(epoch FROM completed_at - first))
"""


def _snapshot(url: str) -> tuple[dict[str, int], tuple[int, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        # The statistics collector flushes on its own schedule: wait for it.
        time.sleep(1.0)
        conn.execute("SELECT pg_stat_clear_snapshot()")
        buffers = {name: int(count) for name, count in conn.execute(_BUFFERS).fetchall()}
        wal = conn.execute(_WAL).fetchone()
        assert wal is not None
        return buffers, (int(wal[0]), int(wal[1]))


def measure(url: str, jobs: int) -> None:
    """Drain ``url``'s due jobs (``jobs`` of them) and print what each cost."""
    with psycopg.connect(url) as conn:
        since = conn.execute("SELECT now()").fetchone()
    buffers_before, wal_before = _snapshot(url)
    server_before = postgres_cpu_seconds()
    worker_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    worker = [sys.executable, "-m", "bench.worker_proc", "drain", url, "120"]
    done = subprocess.run(worker, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    report = json.loads(done.stdout.strip().splitlines()[-1])
    server = postgres_cpu_seconds() - server_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = sum(
        getattr(after, f) - getattr(worker_before, f) for f in ("ru_utime", "ru_stime")
    )
    buffers_after, wal_after = _snapshot(url)
    with psycopg.connect(url) as conn:
        per_second = [int(row[0]) for row in conn.execute(_PER_SECOND, since).fetchall()]
    print(f"{jobs:,} jobs drained in {wall:.2f} s (the worker's start-up included)")
    print(
        f"  worker CPU {worker_cpu * 1e6 / jobs:5.0f} us/job, server CPU {server * 1e6 / jobs:5.0f}"
    )
    wal_bytes, fpi = (after_ - before for after_, before in zip(wal_after, wal_before, strict=True))
    print(f"  WAL {wal_bytes / jobs:,.0f} bytes/job, full-page images {fpi / jobs:.3f}/job")
    print(
        f"  the worker's garbage collector: {report['gc_seconds']:.3f} s,"
        f" collections by generation {report['gc_collections']} (start-up included);"
        f" peak RSS {report['rss_mb']:.1f} MB"
    )
    print(f"  completions per second: {' '.join(f'{n:,}' for n in per_second)}")
    used = {
        name: (count - buffers_before.get(name, 0)) / jobs for name, count in buffers_after.items()
    }
    print(f"  buffers read or hit per job: {sum(used.values()):.1f}")
    for name, per_job in sorted(used.items(), key=lambda item: -item[1]):
        if per_job >= 0.05:
            print(f"    {name:42s} {per_job:6.2f}")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=["backlog", "million"])
    parser.add_argument("--jobs", type=int, default=50_000, help="backlog only")
    args = parser.parse_args()
    with database("postgresql", "io") as url:
        cq.prepare(url)
        if args.table == "backlog":
            asyncio.run(cq.fill_backlog(url, args.jobs))
            measure(url, args.jobs)
        else:
            big_table.build("postgresql", url)
            measure(url, big_table.PENDING)


if __name__ == "__main__":
    main()
