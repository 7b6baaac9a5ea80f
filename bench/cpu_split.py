"""Where a dispatch's CPU goes: the worker process, and the PostgreSQL server.

    python -m bench.cpu_split postgresql [--jobs 20000]
    python -m bench.cpu_split sqlite [--jobs 20000]

Fills a backlog on a throwaway database, drains it with the benchmark's worker
process (``bench.worker_proc``, the production wiring with a no-op provider) and
prints the wall time, the worker's CPU seconds (user + system, start-up
included) and, on PostgreSQL, the server's: every ``postgres`` process on this
machine, the ones that ended meanwhile included (the postmaster's children's
times). Both sides in microseconds per job tell which one a faster dispatch
needs to spend less of. Needs the server on this machine (it reads /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import resource
import subprocess
import sys
import time

from bench import commq_scenarios as cq
from bench.databases import database

_TICKS = os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """User + system CPU of every postgres process, plus what its ended children used."""
    total = 0.0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as file:
                text = file.read()
        except OSError:
            continue  # ended while we looked
        if text[text.index("(") + 1 : text.rindex(")")].startswith("postgres"):
            total += _cpu_of(text, children=True)
    return total


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as file:
        return _cpu_of(file.read(), children=False)


def _cpu_of(stat: str, children: bool) -> float:
    # utime, stime (fields 14-15 of proc(5)), then cutime, cstime of ended children
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(value) for value in fields[11 : 15 if children else 13]) / _TICKS


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=["sqlite", "postgresql"])
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    with database(args.backend, "cpu") as url:
        cq.prepare(url)
        asyncio.run(cq.fill_backlog(url, args.jobs))
        server_before = postgres_cpu_seconds()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        worker = [sys.executable, "-m", "bench.worker_proc", "drain", url, "120"]
        subprocess.run(worker, check=True, capture_output=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server = postgres_cpu_seconds() - server_before if args.backend == "postgresql" else 0.0
    worker_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    per_job = 1e6 / args.jobs
    print(f"{args.backend}: {args.jobs:,} jobs drained in {wall:.2f} s (start-up included)")
    print(f"  worker CPU  {worker_cpu:6.2f} s  {worker_cpu * per_job:5.0f} us/job")
    if args.backend == "postgresql":
        print(f"  server CPU  {server:6.2f} s  {server * per_job:5.0f} us/job")


if __name__ == "__main__":
    main()
