"""One run's steps: commq on each backend, the peers, the raw limits."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import time
import traceback
from collections.abc import Callable, Collection
from pathlib import Path

from bench import big_scenarios, big_table, http_load, raw
from bench import commq_scenarios as cq
from bench.databases import database
from bench.plan import Plan
from bench.results import Results

HERE = Path(__file__).resolve().parent
#: CommqRun's parts, in the order a full run takes them.
COMMQ_PARTS = ("enqueue", "http", "dispatch", "latency", "million")
#: The peers' modes: (mode, scenario).
PEER_MODES = (
    ("single", "enqueue_single"),
    ("batch", "enqueue_batch"),
    ("dispatch", "dispatch_20k"),
)
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def step(results: Results, label: str, action: Callable[[], None]) -> None:
    """Run one scenario; a failure is printed and noted, and the run goes on."""
    print(f"[{time.strftime('%H:%M:%S')}] {label}", flush=True)
    try:
        action()
    except Exception as exc:  # one broken scenario must not lose the others' figures
        traceback.print_exc()
        results.note(f"{label}: FAILED ({type(exc).__name__}: {str(exc)[:200]})")


class CommqRun:
    """Scenarios a-h of commq on one backend."""

    def __init__(self, backend: str, plan: Plan, results: Results) -> None:
        self.backend, self.plan, self.results = backend, plan, results
        self.rss: list[float] = []

    def run(self, parts: Collection[str] = COMMQ_PARTS) -> None:
        """The plan's scenarios among ``parts`` (COMMQ_PARTS names), in that order, then
        the worker's peak RSS over every dispatch run so far."""
        b, plan = self.backend, self.plan
        steps = (
            ("enqueue", f"{b}: a/b enqueue (application layer)", self.enqueue),
            ("http", f"{b}: a/b enqueue over HTTP", self.http),
            (
                "dispatch",
                f"{b}: c dispatch {plan.backlog:,} x{plan.dispatch_rounds}",
                self.dispatch,
            ),
            ("latency", f"{b}: e latency", self.latency),
            ("million", f"{b}: 1M table (d, f, g)", self.million),
        )
        for part, label, action in steps:
            if part in parts and (part != "million" or plan.million):
                step(self.results, label, action)
        if self.rss:
            self.results.add("worker_rss", b, "rss_mb", max(self.rss))

    def _add(self, scenario: str, value: float, metric: str = "jobs_per_s") -> None:
        self.results.add(scenario, self.backend, metric, value)

    def enqueue(self) -> None:
        """a and b through QueueService.enqueue."""
        with database(self.backend, "enq") as url:
            cq.prepare(url)
            single = cq.enqueue_single(url, self.plan.singles, self.plan.enqueue_budget)
            self._add("enqueue_single", asyncio.run(single))
            self._add("enqueue_batch", asyncio.run(cq.enqueue_batch(url, self.plan.batches)))

    def http(self) -> None:
        """a and b through the real server, 16 clients."""
        with database(self.backend, "http") as url:
            cq.prepare(url)
            with http_load.server(url) as (port, key):
                budget = self.plan.enqueue_budget
                single = http_load.http_enqueue(port, key, self.plan.http_singles, 1, budget)
                self._add("http_enqueue_single", asyncio.run(single))
                batch = http_load.http_enqueue(port, key, self.plan.batches, 1000, budget)
                self._add("http_enqueue_batch", asyncio.run(batch))

    def _dispatch(self, scenario: str, url: str, expected: int) -> float:
        jobs_per_s, peak, note = cq.dispatch(url, expected, self.plan.dispatch_cap)
        self.rss.append(peak)
        if note:
            self.results.note(f"{scenario}/{self.backend}: {note}")
        return jobs_per_s

    def dispatch(self) -> None:
        """c, the plan's rounds of it in a row (the median is recorded)."""
        for _ in range(self.plan.dispatch_rounds):
            self.dispatch_round()

    def dispatch_round(self) -> None:
        """One round of c: a backlog drained by a worker process at the default settings."""
        with database(self.backend, "dispatch") as url:
            cq.prepare(url)
            asyncio.run(cq.fill_backlog(url, self.plan.backlog))
            jobs_per_s = self._dispatch("dispatch_20k", url, self.plan.backlog)
        self.results.add_sample("dispatch_20k", self.backend, "jobs_per_s", jobs_per_s)

    def latency(self) -> None:
        """e: jobs trickled to an idle worker (same process on SQLite, own process on PG)."""
        with database(self.backend, "latency") as url:
            cq.prepare(url)
            sqlite = self.backend == "sqlite"
            run = cq.latency_same_process if sqlite else cq.latency_separate_worker
            delays = asyncio.run(run(url, self.plan.latency_jobs, self.plan.latency_rate))
            cq.record_latency(self.results, self.backend, delays, self.plan.latency_jobs)

    def million(self) -> None:
        """The 1,000,000-job table, built once and used by f, then d, then g."""
        b = self.backend
        with database(b, "million") as url:
            cq.prepare(url)
            started = time.perf_counter()
            big_table.build(b, url)
            took = time.perf_counter() - started
            self.results.note(f"{b}: 1,000,000-job table built in {took:.0f} s")
            reads = big_scenarios.reads(
                url, b, self.results, self.plan.read_samples, self.plan.read_budget
            )
            step(self.results, f"{b}: f reads on 1M", lambda: asyncio.run(reads))
            step(self.results, f"{b}: d dispatch on 1M", lambda: self._dispatch_1m(url))
            step(self.results, f"{b}: g bulk retry", lambda: self._bulk_retry(url))

    def _dispatch_1m(self, url: str) -> None:
        self._add("dispatch_1m", self._dispatch("dispatch_1m", url, big_table.PENDING))

    def _bulk_retry(self, url: str) -> None:
        if not big_scenarios.retry_endpoint_exists(url):
            self.results.note(
                f"bulk_retry_100k/{self.backend}: skipped: POST {big_scenarios.RETRY_PATH} "
                "is not served by this build (the operations issue has not landed)"
            )
            return
        big_scenarios.bulk_retry(url, self.backend, self.results, self.plan.dispatch_cap)


def peers(plan: Plan, results: Results, modes: Collection[str] = ("single", "batch")) -> None:
    """pgqueuer and procrastinate in ``modes``, in their own venv, on throwaway databases."""
    if not PEERS_PYTHON.exists():
        if "peers skipped" not in " ".join(results.notes):
            results.note(f"peers skipped: {PEERS_PYTHON} missing (`make bench` makes it)")
        return
    sizes = {"single": plan.singles, "batch": plan.batches * 1000, "dispatch": plan.backlog}
    for peer in ("pgqueuer", "procrastinate"):
        for mode, scenario in PEER_MODES:
            if mode not in modes:
                continue
            n = sizes[mode]
            action = functools.partial(_peer, peer, mode, scenario, n, plan, results)
            step(results, f"{peer}: {mode} N={n:,}", action)


def _peer(peer: str, mode: str, scenario: str, n: int, plan: Plan, results: Results) -> None:
    with database("postgresql", peer) as url:
        child = subprocess.run(
            [
                str(PEERS_PYTHON),
                "-m",
                "bench.peers",
                peer,
                mode,
                url,
                str(n),
                str(plan.dispatch_cap),
            ],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            timeout=plan.dispatch_cap + 300,
            check=False,
        )
    if child.returncode != 0:
        raise RuntimeError(child.stderr[-1500:])
    report = json.loads(child.stdout.strip().splitlines()[-1])
    results.add_sample(scenario, peer, "jobs_per_s", report["jobs_per_s"])
    if report["done"] < n:
        cap = plan.dispatch_cap
        results.note(f"{scenario}/{peer}: stopped after {cap:.0f} s, {report['done']:,} of {n:,}")


def raw_enqueue(plan: Plan, results: Results) -> None:
    """The raw psycopg INSERT limits (and SQLite's commit rate, printed only)."""

    def run() -> None:
        with database("postgresql", "raw") as url:
            results.add("enqueue_single", "raw", "jobs_per_s", raw.single_insert(url, plan.singles))
            results.add("enqueue_batch", "raw", "jobs_per_s", raw.executemany(url, plan.batches))
        with database("sqlite", "raw") as url:
            commits = raw.sqlite_single_insert(url.removeprefix("sqlite:///"), plan.singles)
            results.note(
                f"SQLite raw one-row INSERT commits (WAL, synchronous=FULL): {commits:,.0f}/s"
            )

    step(results, "raw limits: enqueue", run)


def raw_dispatch(plan: Plan, results: Results, million: bool = True) -> None:
    """The raw claim-and-complete loop on the backlog of c, and (full run, ``million``)
    on 1,000,000 rows."""

    def run() -> None:
        with database("postgresql", "raw") as url:
            raw.fill(url, plan.backlog)
            results.add_sample("dispatch_20k", "raw", "jobs_per_s", raw.claim_loop(url)[0])
            if plan.million and million:
                raw.fill(url, 50_000, 950_000)
                results.add("dispatch_1m", "raw", "jobs_per_s", raw.claim_loop(url)[0])

    step(results, "raw limits: dispatch", run)
