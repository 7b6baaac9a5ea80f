"""`python -m bench [--quick] [--only PART ...] [--out bench/results.json]`."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from bench.databases import server_version
from bench.plan import FULL, QUICK, Plan
from bench.report import ratio_lines, target_lines
from bench.results import Results, table
from bench.runs import HERE, CommqRun, peers, raw_dispatch, raw_enqueue, step

PARTS = ("sqlite", "postgresql", "peers", "raw")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def python_speed(steps: int = 10_000_000) -> str:
    """How long a plain Python loop of ``steps`` additions takes here, now.

    The CPU model alone does not tell this machine's speed: machines reported alike ran
    this loop in 0.26 to 1.66 s, and one machine moved between 0.80 and 1.20 s within a
    session (docs/benchmarks.md, "The machine"). Printed at the start and at the end of a
    run, it dates the run's absolute figures.
    """
    started = time.perf_counter()
    total = 0
    for i in range(steps):
        total += i
    return f"a {steps:,}-step Python loop {time.perf_counter() - started:.2f} s"


def machine() -> str:
    """One line about where this ran."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?")
    return (
        f"{cpu}, {len(os.sched_getaffinity(0))} cores, PostgreSQL {server_version()}, "
        f"Python {platform.python_version()}, load average {_load()}, {python_speed()}"
    )


def _print_report(results: Results, name: str, seconds: float, out: Path) -> None:
    print(
        f"\ncommq benchmark ({name}), {seconds:.0f} s, load average at the end {_load()},"
        f" {python_speed()}"
    )
    print(table(results))
    print("\nRatios (same run):")
    print("\n".join(ratio_lines(results)) or "  (none measured)")
    print("\nTargets of issue 5:")
    print("\n".join(target_lines(results)))
    if results.notes:
        print("\nNotes:")
        print("\n".join(f"  - {n}" for n in results.notes))
    print(f"\nwrote {out}")


def _postgresql_beside_peers(plan: Plan, results: Results, only: list[str]) -> None:
    """commq on PostgreSQL, with the peers and the raw limits of each scenario in turn.

    Enqueue and dispatch each run back to back with the peers' and the raw limits' of
    the same scenario, so that the ratios compare figures taken minutes apart at most,
    not a quarter of an hour (this machine's speed drifts within the hour). c's rounds
    alternate commq, the peers and the raw loop, so that each median is taken over the
    same stretch of that drift.
    """
    pg = CommqRun("postgresql", plan, results) if "postgresql" in only else None
    if pg is not None:
        pg.run(["enqueue"])
    if "peers" in only:
        peers(plan, results, ("single", "batch"))
    if "raw" in only:
        raw_enqueue(plan, results)
    rounds = plan.dispatch_rounds
    for round_ in range(1, rounds + 1):
        if pg is not None:
            label = f"postgresql: c dispatch {plan.backlog:,}, round {round_} of {rounds}"
            step(results, label, pg.dispatch_round)
        if "peers" in only:
            peers(plan, results, ("dispatch",))
        if "raw" in only:
            raw_dispatch(plan, results, million=round_ == rounds)
    if pg is not None:
        pg.run(["http", "latency", "million"])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write results.json."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, no 1M table (< 2 min)")
    parser.add_argument("--only", nargs="*", choices=PARTS, default=list(PARTS))
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    results = Results()
    started = time.perf_counter()
    print(f"commq benchmark ({plan.name}) on {machine()}", flush=True)
    if "sqlite" in args.only:
        CommqRun("sqlite", plan, results).run()
    _postgresql_beside_peers(plan, results, args.only)
    for line in results.sample_notes():
        results.note(line)
    results.write(args.out)
    _print_report(results, plan.name, time.perf_counter() - started, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
