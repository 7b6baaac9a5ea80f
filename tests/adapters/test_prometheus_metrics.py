"""The worker's per-attempt series read exactly as prometheus_client's own would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram

from commq.adapters.metrics import SEND_BUCKETS, WAIT_BUCKETS, PrometheusMetrics
from commq.application.ports import AttemptReport
from commq.domain.jobs import Channel, Job, JobStatus
from commq.domain.outcomes import SendOutcome, SendResult

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# On the bucket edges, between them, past the last one, and a negative (clock skew) wait.
DURATIONS = [0.0, 0.005, 0.0051, 0.3, 1.0, 59.9, 60.0, 61.0, 0.02]
WAITS = [0.0, 0.01, 0.011, 299.0, 86400.0, 90000.0, 3.5, -2.0, 0.5]
RESULTS = [
    SendResult.ok("twilio", "SM1"),
    SendResult(SendOutcome.TRANSIENT, "twilio", error="503"),
    SendResult.ok("smtp", "m1"),
]


def _job(channel: Channel, waited: float) -> Job:
    run_at = T0 - timedelta(seconds=waited)
    return Job("j", "acme", channel, "r", {}, JobStatus.PROCESSING, 0, 0, 3, run_at, T0, T0)


def _samples(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")  # when a series began: prometheus_client's own
    }


def test_sends_durations_and_waits_expose_what_prometheus_client_would() -> None:
    reference = CollectorRegistry()
    sends = Counter("commq_sends", "", ["provider", "outcome"], registry=reference)
    durations = Histogram(
        "commq_send_duration_seconds",
        "",
        ["channel", "provider"],
        buckets=SEND_BUCKETS,
        registry=reference,
    )
    waits = Histogram(
        "commq_queue_wait_seconds", "", ["channel"], buckets=WAIT_BUCKETS, registry=reference
    )
    metrics = PrometheusMetrics()
    for i, (took, waited) in enumerate(zip(DURATIONS, WAITS, strict=True)):
        result = RESULTS[i % len(RESULTS)]
        channel = Channel.EMAIL if result.provider == "smtp" else Channel.SMS
        metrics.attempt_finished(
            _job(channel, waited), AttemptReport(T0, T0 + timedelta(seconds=took), result)
        )
        sends.labels(result.provider, result.outcome.value).inc()
        durations.labels(channel.value, result.provider).observe(took)
        waits.labels(channel.value).observe(max(waited, 0.0))

    produced = {s for s in _samples(metrics.registry) if not s[0].startswith("commq_worker")}
    assert produced == _samples(reference)
