"""One scenario of the benchmark, a few times over, for before/after comparisons.

    python -m bench.once dispatch postgresql [--rounds 3]    # c: 20,000-job drain
    python -m bench.once d-over-c postgresql [--rounds 2]    # c, then d on a fresh 1M table
    python -m bench.once enqueue sqlite [--rounds 2] [--jobs 5000] [--email]
    python -m bench.once http postgresql [--rounds 2]         # POST /jobs, 16 clients
    python -m bench.once http-batch sqlite [--rounds 2] [--requests 60]
    python -m bench.once bulk-retry sqlite [--rounds 2]      # g on a fresh 1M table, after d

Each round runs on a throwaway database and prints one line. Run it in two trees one
after the other (``git worktree add``, then ``PYTHONPATH=TREE:TREE/src``) and alternate:
this machine's speed drifts by 10-20 % within minutes, so only adjacent runs compare.
"""

from __future__ import annotations

import argparse
import asyncio

from bench import big_scenarios, big_table, http_load
from bench import commq_scenarios as cq
from bench.cpu_split import process_cpu_seconds
from bench.databases import database
from bench.plan import FULL
from bench.results import Results
from bench.workload import new_email_job


def _dispatch_20k(backend: str) -> float:
    with database(backend, "once") as url:
        cq.prepare(url)
        asyncio.run(cq.fill_backlog(url, FULL.backlog))
        jobs_per_s, _, _ = cq.dispatch(url, FULL.backlog, FULL.dispatch_cap)
    return jobs_per_s


def _d_over_c(backend: str) -> str:
    c = _dispatch_20k(backend)
    with database(backend, "million") as url:
        cq.prepare(url)
        big_table.build(backend, url)
        d, _, _ = cq.dispatch(url, big_table.PENDING, FULL.dispatch_cap)
    return f"dispatch_20k {c:,.0f}, dispatch_1m {d:,.0f} jobs/s, d/c {d / c:.2f}"


def _bulk_retry(backend: str) -> str:
    """g as the full run measures it: on the million-job table once d has drained it."""
    results = Results()
    with database(backend, "million") as url:
        cq.prepare(url)
        big_table.build(backend, url)
        cq.dispatch(url, big_table.PENDING, FULL.dispatch_cap)
        big_scenarios.bulk_retry(url, backend, results, FULL.dispatch_cap)
    seconds = results.get("bulk_retry_100k", backend, "seconds")
    during = results.get("bulk_retry_100k", backend, "jobs_per_s")
    kept = results.checked.get(f"bulk_retry_kept/{backend}")
    if seconds is None or during is None or kept is None:
        return "bulk_retry_100k FAILED: " + "; ".join(results.notes)
    return (
        f"bulk_retry_100k {seconds:.2f} s, dispatch meanwhile {during:,.0f} jobs/s, kept {kept:.2f}"
    )


def _enqueue(backend: str, jobs: int, email: bool) -> str:
    # --email: e-mails to distinct addresses, each checked as the API checks them; the
    # full run's jobs are the same small SMS every time.
    job = new_email_job if email else cq.same_sms
    with database(backend, "once") as url:
        cq.prepare(url)
        single = asyncio.run(cq.enqueue_single(url, jobs, job=job))
        batch = asyncio.run(cq.enqueue_batch(url, FULL.batches, job=job))
    return f"enqueue_single {single:,.0f} jobs/s, enqueue_batch {batch:,.0f} jobs/s"


def _http(backend: str, requests: int, batch: int) -> str:
    with database(backend, "once") as url:
        cq.prepare(url)
        with http_load.server(url) as (port, key):
            pid = http_load.last_server_pid
            assert pid is not None
            cpu_before = process_cpu_seconds(pid)
            rate = asyncio.run(http_load.http_enqueue(port, key, requests, batch))
            cpu = process_cpu_seconds(pid) - cpu_before
    scenario = "http_enqueue_single" if batch == 1 else "http_enqueue_batch"
    per_job = cpu * 1e6 / (requests * batch)
    return (
        f"{scenario} {rate:,.0f} jobs/s ({requests} requests, 16 clients),"
        f" server CPU {per_job:,.1f} us/job"
    )


def main(argv: list[str] | None = None) -> None:
    """Run the scenario ``--rounds`` times, a line each."""
    parser = argparse.ArgumentParser(prog="python -m bench.once", description=__doc__)
    scenarios = ("dispatch", "d-over-c", "enqueue", "http", "http-batch", "bulk-retry")
    parser.add_argument("scenario", choices=scenarios)
    parser.add_argument("backend", choices=("sqlite", "postgresql"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=FULL.singles)
    parser.add_argument("--requests", type=int, help="default: the full run's count")
    parser.add_argument("--email", action="store_true", help="enqueue: e-mails, not SMS")
    args = parser.parse_args(argv)
    for round_ in range(1, args.rounds + 1):
        if args.scenario == "dispatch":
            line = f"dispatch_20k {_dispatch_20k(args.backend):,.0f} jobs/s"
        elif args.scenario == "d-over-c":
            line = _d_over_c(args.backend)
        elif args.scenario == "enqueue":
            line = _enqueue(args.backend, args.jobs, args.email)
        elif args.scenario == "bulk-retry":
            line = _bulk_retry(args.backend)
        elif args.scenario == "http":
            line = _http(args.backend, args.requests or FULL.http_singles, 1)
        else:
            line = _http(args.backend, args.requests or FULL.batches, 1000)
        print(f"{args.backend} round {round_}: {line}", flush=True)


if __name__ == "__main__":
    main()
