"""Ratios against the peers and the raw limits, and the issue's targets, from one run's figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.results import Results

PG = "postgresql"


@dataclass(frozen=True)
class Target:
    """One line of the issue's Targets section, as a check on this run's figures."""

    text: str
    value: Callable[[Results], float | None]
    goal: float
    higher_is_better: bool = True

    def line(self, results: Results) -> str:
        value = self.value(results)
        if value is None:
            return f"  {'n/a':>6}  {self.text}: not measured"
        ok = value >= self.goal if self.higher_is_better else value <= self.goal
        sign = ">=" if self.higher_is_better else "<="
        verdict = "MET" if ok else "MISSED"
        return f"  {verdict:>6}  {self.text}: {value:,.2f} (target {sign} {self.goal:g})"


def _ratio(a: tuple[str, str, str], b: tuple[str, str, str]) -> Callable[[Results], float | None]:
    def compute(results: Results) -> float | None:
        x, y = results.get(*a), results.get(*b)
        return None if x is None or not y else x / y

    return compute


def _value(scenario: str, backend: str, metric: str) -> Callable[[Results], float | None]:
    return lambda results: results.get(scenario, backend, metric)


def _worst(metric: str, scenarios: tuple[str, ...]) -> Callable[[Results], float | None]:
    def compute(results: Results) -> float | None:
        found = [
            v
            for s in scenarios
            for b in ("sqlite", PG)
            if (v := results.get(s, b, metric)) is not None
        ]
        return max(found) if found else None

    return compute


def _least_kept(results: Results) -> float | None:
    kept = [v for k, v in results.checked.items() if k.startswith("bulk_retry_kept/")]
    return min(kept) if kept else None


def _j(scenario: str, backend: str) -> tuple[str, str, str]:
    return (scenario, backend, "jobs_per_s")


TARGETS = (
    Target(
        "PG dispatch (c) / pgqueuer",
        _ratio(_j("dispatch_20k", PG), _j("dispatch_20k", "pgqueuer")),
        1.5,
    ),
    Target(
        "PG dispatch (c) / raw claim loop",
        _ratio(_j("dispatch_20k", PG), _j("dispatch_20k", "raw")),
        0.4,
    ),
    Target(
        "PG dispatch 1M (d) / dispatch (c)",
        _ratio(_j("dispatch_1m", PG), _j("dispatch_20k", PG)),
        0.9,
    ),
    Target(
        "PG enqueue one at a time / pgqueuer",
        _ratio(_j("enqueue_single", PG), _j("enqueue_single", "pgqueuer")),
        1.5,
    ),
    Target(
        "PG enqueue one at a time / raw INSERT",
        _ratio(_j("enqueue_single", PG), _j("enqueue_single", "raw")),
        0.7,
    ),
    Target(
        "PG enqueue batches / pgqueuer",
        _ratio(_j("enqueue_batch", PG), _j("enqueue_batch", "pgqueuer")),
        2.0,
    ),
    Target("HTTP POST /jobs req/s (PG)", _value("http_enqueue_single", PG, "jobs_per_s"), 1000),
    Target(
        "HTTP POST /jobs req/s (SQLite)",
        _value("http_enqueue_single", "sqlite", "jobs_per_s"),
        1000,
    ),
    Target(
        "HTTP POST /jobs/batch jobs/s (PG)", _value("http_enqueue_batch", PG, "jobs_per_s"), 20000
    ),
    Target(
        "HTTP POST /jobs/batch jobs/s (SQLite)",
        _value("http_enqueue_batch", "sqlite", "jobs_per_s"),
        20000,
    ),
    Target("PG latency p50 ms", _value("latency", PG, "p50_ms"), 5, False),
    Target("PG latency p99 ms", _value("latency", PG, "p99_ms"), 20, False),
    Target("SQLite dispatch jobs/s", _value("dispatch_20k", "sqlite", "jobs_per_s"), 5000),
    Target(
        "SQLite enqueue one at a time jobs/s",
        _value("enqueue_single", "sqlite", "jobs_per_s"),
        2000,
    ),
    Target(
        "(f) worst p99 ms",
        _worst("p99_ms", ("stats_1m", "failed_page_1m", "failed_page_deep_1m")),
        20,
        False,
    ),
    Target("(g) bulk retry seconds", _worst("seconds", ("bulk_retry_100k",)), 10, False),
    Target("(g) share of its rate other dispatch kept meanwhile", _least_kept, 0.5),
    Target("(h) worker peak RSS MB", _worst("rss_mb", ("worker_rss",)), 150, False),
)

RATIOS = (
    ("enqueue_single", ("pgqueuer", "procrastinate", "raw")),
    ("enqueue_batch", ("pgqueuer", "procrastinate", "raw")),
    ("dispatch_20k", ("pgqueuer", "procrastinate", "raw")),
    ("dispatch_1m", ("raw",)),
)


def ratio_lines(results: Results) -> list[str]:
    """commq (PostgreSQL) as a multiple of each peer and each raw limit, same run."""
    lines = []
    for scenario, others in RATIOS:
        ours = results.get(scenario, PG, "jobs_per_s")
        if ours is None:
            continue
        parts = []
        for other in others:
            theirs = results.get(scenario, other, "jobs_per_s")
            if theirs:
                parts.append(f"{ours / theirs:.2f}x {other}")
        if parts:
            lines.append(f"  commq/{scenario}: " + ", ".join(parts))
    return lines


def target_lines(results: Results) -> list[str]:
    """Each target of the issue with this run's figure."""
    return [t.line(results) for t in TARGETS]
