"""Prometheus metrics: the worker loop's observer, and the scrape-time gauges.

Each process keeps its own ``CollectorRegistry`` (never the global one), so
several apps in one test process, or one process's API and worker, cannot
collide. Labels are bounded sets (status, channel, provider, outcome, worker):
never a job id or a recipient.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

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


class PrometheusMetrics:
    """The DispatchObserver that records sends, durations, queue waits and heartbeats."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sends = Counter(
            "commq_sends",
            "Send attempts by provider and outcome.",
            ["provider", "outcome"],
            registry=r,
        )
        self.send_duration = Histogram(
            "commq_send_duration_seconds",
            "Time one send attempt took.",
            ["channel", "provider"],
            buckets=SEND_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "commq_queue_wait_seconds",
            "From a job's runAt (due) to the start of its attempt.",
            ["channel"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.heartbeat_at = Gauge(
            "commq_worker_heartbeat_timestamp_seconds",
            "Unix time of a worker's last heartbeat.",
            ["worker"],
            registry=r,
        )
        self.in_flight = Gauge(
            "commq_worker_in_flight", "Jobs a worker holds right now.", ["worker"], registry=r
        )
        self._series: dict[tuple[Channel, str, SendOutcome], tuple[Any, Any, Any]] = {}

    def attempt_finished(self, job: Job, report: AttemptReport) -> None:
        """Count the attempt and observe its duration and how long the job waited."""
        result = report.result
        key = (job.channel, result.provider, result.outcome)
        series = self._series.get(key)
        if series is None:  # labels() costs a lock and a lookup: once per combination
            channel, provider = job.channel.value, result.provider
            series = self._series[key] = (
                self.sends.labels(provider, result.outcome.value),
                self.send_duration.labels(channel, provider),
                self.queue_wait.labels(channel),
            )
        sends, send_duration, queue_wait = series
        sends.inc()
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

    #: (status, channel, count) for every pair that has jobs.
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
