"""The results.json records, their allowed names, and the printed table."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCENARIOS = (
    "enqueue_single",
    "enqueue_batch",
    "http_enqueue_single",
    "http_enqueue_batch",
    "dispatch_20k",
    "dispatch_1m",
    "latency",
    "stats_1m",
    "failed_page_1m",
    "failed_page_deep_1m",
    "bulk_retry_100k",
    "worker_rss",
)
BACKENDS = ("sqlite", "postgresql", "pgqueuer", "procrastinate", "raw")
METRICS = ("jobs_per_s", "p50_ms", "p99_ms", "seconds", "rss_mb")


@dataclass(frozen=True)
class Record:
    """One figure: what was measured, on what, in which unit."""

    scenario: str
    backend: str
    metric: str
    value: float

    def __post_init__(self) -> None:
        problems = [
            f"{name} {value!r}"
            for name, value, allowed in (
                ("scenario", self.scenario, SCENARIOS),
                ("backend", self.backend, BACKENDS),
                ("metric", self.metric, METRICS),
            )
            if value not in allowed
        ]
        if not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            problems.append(f"value {self.value!r}")
        if problems:
            raise ValueError("bad benchmark record: " + ", ".join(problems))


class Results:
    """The figures of one run, in the order they were measured, plus notes for the table."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.notes: list[str] = []
        #: Figures that only the target checks read (results.json has no metric for them),
        #: by name: "bulk_retry_kept/<backend>" is the share of its rate dispatch kept in g.
        self.checked: dict[str, float] = {}
        #: Every value ``add_sample`` was given, by (scenario, backend, metric).
        self.samples: dict[tuple[str, str, str], list[float]] = {}

    def add(self, scenario: str, backend: str, metric: str, value: float) -> None:
        """Record one figure (replacing an earlier one of the same key)."""
        record = self._put(scenario, backend, metric, value)
        print(f"  -> {scenario:20} {backend:13} {metric:10} {record.value:>12,.3f}", flush=True)

    def add_sample(self, scenario: str, backend: str, metric: str, value: float) -> None:
        """One more measurement of a figure measured several times: the figure recorded
        is the median of all of them so far."""
        samples = self.samples.setdefault((scenario, backend, metric), [])
        samples.append(float(value))
        record = self._put(scenario, backend, metric, statistics.median(samples))
        print(
            f"  -> {scenario:20} {backend:13} {metric:10} {value:>12,.3f}"
            f" (round {len(samples)}, median so far {record.value:,.3f})",
            flush=True,
        )

    def _put(self, scenario: str, backend: str, metric: str, value: float) -> Record:
        record = Record(scenario, backend, metric, round(float(value), 3))
        self.records = [r for r in self.records if _key(r) != _key(record)]
        self.records.append(record)
        return record

    def sample_notes(self) -> list[str]:
        """A line for each figure that is a median, with the values it was taken from."""
        return [
            f"{scenario}/{backend}: median of "
            + " / ".join(f"{value:,.0f}" if value >= 100 else f"{value:.2f}" for value in samples)
            for (scenario, backend, _metric), samples in self.samples.items()
            if len(samples) > 1
        ]

    def get(self, scenario: str, backend: str, metric: str) -> float | None:
        """A recorded value, or None when it was not measured."""
        for r in self.records:
            if _key(r) == (scenario, backend, metric):
                return r.value
        return None

    def note(self, text: str) -> None:
        """A line printed under the table (skips, sizes, caveats)."""
        print(f"  note: {text}", flush=True)
        self.notes.append(text)

    def write(self, path: Path) -> None:
        """Write the records as a JSON list of {scenario, backend, metric, value}."""
        path.write_text(json.dumps([asdict(r) for r in self.records], indent=1) + "\n")


def load(path: Path) -> list[Record]:
    """Read and validate a results.json (raises ValueError on any bad record)."""
    data: Any = json.loads(path.read_text())
    if not isinstance(data, list):
        raise ValueError("results.json must hold a list")
    records = []
    for item in data:
        if not isinstance(item, dict) or set(item) != {"scenario", "backend", "metric", "value"}:
            raise ValueError(f"bad record {item!r}")
        records.append(Record(**item))
    return records


def _key(r: Record) -> tuple[str, str, str]:
    return (r.scenario, r.backend, r.metric)


def table(results: Results) -> str:
    """The figures as a scenario x backend table, one row per scenario and metric."""
    rows = sorted(
        {(r.scenario, r.metric) for r in results.records},
        key=lambda k: (SCENARIOS.index(k[0]), METRICS.index(k[1])),
    )
    header = f"{'scenario':22}{'metric':11}" + "".join(f"{b:>15}" for b in BACKENDS)
    lines = [header, "-" * len(header)]
    for scenario, metric in rows:
        cells = []
        for backend in BACKENDS:
            value = results.get(scenario, backend, metric)
            cells.append(f"{'' if value is None else _fmt(value):>15}")
        lines.append(f"{scenario:22}{metric:11}" + "".join(cells))
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
