"""The benchmark's results.json writer: valid records only, in the shape other tools read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.report import target_lines
from bench.results import BACKENDS, METRICS, SCENARIOS, Results, load, table


def test_results_are_written_as_a_list_of_four_key_records(tmp_path: Path) -> None:
    results = Results()
    results.add("dispatch_20k", "postgresql", "jobs_per_s", 1234.5678)
    results.add("latency", "sqlite", "p99_ms", 7)
    out = tmp_path / "results.json"
    results.write(out)
    data = json.loads(out.read_text())
    assert data == [
        {
            "scenario": "dispatch_20k",
            "backend": "postgresql",
            "metric": "jobs_per_s",
            "value": 1234.568,
        },
        {"scenario": "latency", "backend": "sqlite", "metric": "p99_ms", "value": 7.0},
    ]
    assert [r.value for r in load(out)] == [1234.568, 7.0]


def test_a_figure_measured_again_replaces_the_first() -> None:
    results = Results()
    results.add("worker_rss", "sqlite", "rss_mb", 80)
    results.add("worker_rss", "sqlite", "rss_mb", 90)
    assert results.get("worker_rss", "sqlite", "rss_mb") == 90
    assert len(results.records) == 1


def test_a_figure_measured_in_rounds_is_their_median_with_the_rounds_noted() -> None:
    results = Results()
    for value in (9000, 11000, 9500):
        results.add_sample("dispatch_20k", "postgresql", "jobs_per_s", value)
    results.add_sample("dispatch_20k", "raw", "jobs_per_s", 24000)
    assert results.get("dispatch_20k", "postgresql", "jobs_per_s") == 9500
    assert results.get("dispatch_20k", "raw", "jobs_per_s") == 24000
    assert len(results.records) == 2
    assert results.sample_notes() == ["dispatch_20k/postgresql: median of 9,000 / 11,000 / 9,500"]


def test_the_median_of_an_even_number_of_rounds_is_the_mean_of_the_middle_two() -> None:
    results = Results()
    results.add_sample("dispatch_20k", "pgqueuer", "jobs_per_s", 10)
    results.add_sample("dispatch_20k", "pgqueuer", "jobs_per_s", 20)
    assert results.get("dispatch_20k", "pgqueuer", "jobs_per_s") == 15


@pytest.mark.parametrize(
    ("scenario", "backend", "metric", "value"),
    [
        ("dispatch", "postgresql", "jobs_per_s", 1.0),
        ("dispatch_20k", "mysql", "jobs_per_s", 1.0),
        ("dispatch_20k", "postgresql", "jobs/s", 1.0),
        ("dispatch_20k", "postgresql", "jobs_per_s", float("nan")),
    ],
)
def test_names_outside_the_issue_are_refused(
    scenario: str, backend: str, metric: str, value: float
) -> None:
    with pytest.raises(ValueError, match="bad benchmark record"):
        Results().add(scenario, backend, metric, value)


def test_a_file_with_extra_keys_does_not_load(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    record = {"scenario": "latency", "backend": "raw", "metric": "p50_ms", "value": 1, "n": 5}
    out.write_text(json.dumps([record]))
    with pytest.raises(ValueError, match="bad record"):
        load(out)


def test_the_names_are_exactly_the_issues() -> None:
    assert len(SCENARIOS) == 12 and "bulk_retry_100k" in SCENARIOS
    assert BACKENDS == ("sqlite", "postgresql", "pgqueuer", "procrastinate", "raw")
    assert METRICS == ("jobs_per_s", "p50_ms", "p99_ms", "seconds", "rss_mb")


def test_the_table_has_a_row_per_scenario_and_metric() -> None:
    results = Results()
    results.add("enqueue_single", "postgresql", "jobs_per_s", 500)
    results.add("enqueue_single", "pgqueuer", "jobs_per_s", 1000)
    lines = table(results).splitlines()
    assert lines[2].split() == ["enqueue_single", "jobs_per_s", "500", "1,000"]


def test_every_bench_module_imports() -> None:
    import importlib

    for name in (
        "__main__",
        "big_scenarios",
        "big_table",
        "commq_scenarios",
        "http_load",
        "plan",
        "profile",
        "raw",
        "report",
        "roundtrips",
        "runs",
        "worker_proc",
        "workload",
        "peers",
        "once",
        "cpu_split",
        "micro",
        "drain_io",
        "insert_costs",
        "retry_chunk",
        "drain_threads",
    ):
        importlib.import_module(f"bench.{name}")


def test_the_bulk_retry_target_checks_the_backend_that_kept_the_least_dispatch() -> None:
    results = Results()
    results.add("bulk_retry_100k", "sqlite", "seconds", 3.4)
    results.add("bulk_retry_100k", "postgresql", "seconds", 3.3)
    results.checked.update({"bulk_retry_kept/sqlite": 0.34, "bulk_retry_kept/postgresql": 0.58})
    lines = [line for line in target_lines(results) if "(g)" in line]
    assert lines == [
        "     MET  (g) bulk retry seconds: 3.40 (target <= 10)",
        "  MISSED  (g) share of its rate other dispatch kept meanwhile: 0.34 (target >= 0.5)",
    ]


def test_the_committed_results_file_is_a_full_run_in_the_issues_names() -> None:
    records = load(Path(__file__).parents[2] / "bench" / "results.json")
    keys = {(r.scenario, r.backend, r.metric) for r in records}
    assert len(keys) == len(records)
    assert {r.scenario for r in records} == set(SCENARIOS)
    assert {r.backend for r in records} == set(BACKENDS)


def test_the_machine_line_dates_the_run_with_the_python_loop_speed() -> None:
    import re

    from bench.__main__ import python_speed

    assert re.fullmatch(r"a 10,000-step Python loop \d+\.\d\d s", python_speed(10_000))
