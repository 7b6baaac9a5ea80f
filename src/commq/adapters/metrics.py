"""Prometheus metrics: the worker loop's observer, and the scrape-time gauges.

Each process keeps its own ``CollectorRegistry`` (never the global one), so
several apps in one test process, or one process's API and worker, cannot
collide. Labels are bounded sets (status, channel, provider, outcome, worker):
never a job id or a recipient.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from commq.application.ports import AttemptReport
from commq.domain.jobs import Channel, Job
from commq.domain.outcomes import SendOutcome

#: Content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (
    *(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0),
    *(300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0),
)


class _Histogram:
    """One label set's buckets, counted by the event loop's thread alone.

    prometheus_client's Histogram takes a lock for each bucket and for the sum, on
    every observation: a tenth of a PostgreSQL worker's CPU at full speed. Only the
    loop writes these; a scrape from another thread copies the counts in one step.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        counts = list(self.counts)
        edges = [*(repr(b) for b in self.bounds), "+Inf"]
        running, out = 0, []
        for edge, count in zip(edges, counts, strict=True):
            running += count
            out.append((edge, float(running)))
        return out


class _SendFigures:
    """The per-attempt series (sends, send durations, queue waits) as a collector."""

    def __init__(self) -> None:
        self.sends: dict[tuple[str, str], int] = {}
        self.durations: dict[tuple[str, str], _Histogram] = {}
        self.waits: dict[str, _Histogram] = {}

    def collect(self) -> Iterator[Metric]:
        sends = CounterMetricFamily(
            "commq_sends", "Send attempts by provider and outcome.", labels=["provider", "outcome"]
        )
        for labels, count in list(self.sends.items()):
            sends.add_metric(list(labels), count)
        yield sends
        yield _histogram_family(
            "commq_send_duration_seconds",
            "Time one send attempt took.",
            ["channel", "provider"],
            self.durations,
        )
        yield _histogram_family(
            "commq_queue_wait_seconds",
            "From a job's runAt (due) to the start of its attempt.",
            ["channel"],
            {(channel,): histogram for channel, histogram in self.waits.items()},
        )


def _histogram_family(
    name: str, documentation: str, labels: list[str], series: dict[tuple[str, ...], _Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for values, histogram in list(series.items()):
        family.add_metric(list(values), histogram.cumulative(), histogram.total)
    return family


class PrometheusMetrics:
    """The DispatchObserver that records sends, durations, queue waits and heartbeats."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._figures = _SendFigures()
        r.register(self._figures)
        self.heartbeat_at = Gauge(
            "commq_worker_heartbeat_timestamp_seconds",
            "Unix time of a worker's last heartbeat.",
            ["worker"],
            registry=r,
        )
        self.in_flight = Gauge(
            "commq_worker_in_flight", "Jobs a worker holds right now.", ["worker"], registry=r
        )
        self._series: dict[
            tuple[Channel, str, SendOutcome], tuple[tuple[str, str], _Histogram, _Histogram]
        ] = {}

    def attempt_finished(self, job: Job, report: AttemptReport) -> None:
        """Count the attempt and observe its duration and how long the job waited."""
        result = report.result
        figures = self._figures
        key = (job.channel, result.provider, result.outcome)
        series = self._series.get(key)
        if series is None:  # the label tuples and histograms, once per combination
            channel, provider = job.channel.value, result.provider
            series = self._series[key] = (
                (provider, result.outcome.value),
                figures.durations.setdefault((channel, provider), _Histogram(SEND_BUCKETS)),
                figures.waits.setdefault(channel, _Histogram(WAIT_BUCKETS)),
            )
        sends, send_duration, queue_wait = series
        figures.sends[sends] = figures.sends.get(sends, 0) + 1
        duration = (report.finished_at - report.started_at).total_seconds()
        send_duration.observe(max(duration, 0.0))
        # run_at comes from the database clock and started_at from this host's: clamp skew.
        wait = (report.started_at - job.run_at).total_seconds()
        queue_wait.observe(max(wait, 0.0))

    def heartbeat(self, worker_id: str, in_flight: int) -> None:
        """Record that ``worker_id`` is alive and how many jobs it holds."""
        self.heartbeat_at.labels(worker_id).set(time.time())
        self.in_flight.labels(worker_id).set(in_flight)

    def forget_worker(self, worker_id: str) -> None:
        """Drop a stopped worker's series, so a dead worker is not reported as alive."""
        for gauge in (self.heartbeat_at, self.in_flight):
            try:
                gauge.remove(worker_id)
            except KeyError:
                continue


@dataclass(frozen=True, slots=True)
class QueueGauges:
    """What the database says at scrape time."""

    #: (status, channel, count) for every status and channel (0 included).
    jobs: Sequence[tuple[str, str, int]]
    oldest_pending_age_seconds: float
    #: (provider, state) of each provider's shared circuit breaker.
    circuits: Sequence[tuple[str, str]] = ()


class _Scrape:
    """One scrape's collectors: the process registry plus the database gauges."""

    def __init__(self, registry: CollectorRegistry, gauges: QueueGauges | None) -> None:
        self._registry = registry
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        if self._gauges is not None:
            yield from _gauge_families(self._gauges)


def _gauge_families(gauges: QueueGauges) -> Iterable[Metric]:
    jobs = GaugeMetricFamily(
        "commq_jobs", "Jobs by status and channel.", labels=["status", "channel"]
    )
    for status, channel, count in gauges.jobs:
        jobs.add_metric([status, channel], count)
    oldest = GaugeMetricFamily(
        "commq_oldest_pending_age_seconds",
        "How long the oldest due pending job has waited (0 when none is due).",
        value=gauges.oldest_pending_age_seconds,
    )
    circuits = GaugeMetricFamily(
        "commq_circuit_state",
        "1 for the state each provider's circuit breaker is in (closed, open, half_open).",
        labels=["provider", "state"],
    )
    for provider, state in gauges.circuits:
        for candidate in ("closed", "open", "half_open"):
            circuits.add_metric([provider, candidate], 1.0 if candidate == state else 0.0)
    return [jobs, oldest, circuits]


def render(registry: CollectorRegistry, gauges: QueueGauges | None = None) -> bytes:
    """The text exposition of ``registry`` plus, when given, the database gauges."""
    return generate_latest(_Scrape(registry, gauges))
