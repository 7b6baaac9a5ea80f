"""What the benchmark sends: jobs, a caller, a no-op sender, and figures from samples."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from commq.domain.audit import Principal
from commq.domain.jobs import Channel, Job, NewJob
from commq.domain.outcomes import SendResult
from commq.domain.permissions import Role
from commq.entrypoints.settings import Settings, load_settings

#: A platform admin acting in-process, as the API would after authenticating a key.
ADMIN = Principal("bench", "bench", Role.ADMIN, None)
BUSINESS = "bench"
RECIPIENT = "+14155550100"


def new_job(payload: dict[str, object] | None = None) -> NewJob:
    """A small SMS job, due now."""
    return NewJob(BUSINESS, Channel.SMS, RECIPIENT, payload or {"body": "hi"})


def new_email_job(n: int) -> NewJob:
    """An e-mail to the ``n``-th of many recipients (``bench.once enqueue --email``)."""
    return NewJob(BUSINESS, Channel.EMAIL, f"user{n}@example.com", {"subject": "hi", "text": "hi"})


def job_json(payload: dict[str, object] | None = None) -> dict[str, object]:
    """The same job as the API's JSON body."""
    return {
        "businessId": BUSINESS,
        "channel": "sms",
        "recipient": RECIPIENT,
        "payload": payload or {"body": "hi"},
    }


def settings_for(url: str) -> Settings:
    """Production defaults for ``url``: only the database comes from the benchmark."""
    return load_settings({"COMMQ_DATABASE_URL": url}, config_file=Path("/nonexistent/commq.toml"))


class NoopSender:
    """A provider that takes every message at once."""

    name = "noop"

    async def send(self, job: Job) -> SendResult:
        # A message id, as every real provider returns one (and commq indexes it).
        return SendResult.ok(self.name, f"noop-{job.id}")

    async def close(self) -> None:
        return None


class StampingSender(NoopSender):
    """A no-op provider that notes, per job, the delay since ``payload["t"]`` (time.time())."""

    def __init__(self) -> None:
        self.delays_ms: list[float] = []

    async def send(self, job: Job) -> SendResult:
        sent_at = time.time()
        stamp = job.payload.get("t")
        if isinstance(stamp, float):
            self.delays_ms.append((sent_at - stamp) * 1000)
        return SendResult.ok(self.name, f"noop-{job.id}")


def use_sender(container: Any, sender: NoopSender) -> None:
    """Make ``sender`` the only provider of every channel of a bootstrap Container.

    Keeps the container's shape: a sender per channel, or (since failover) a list per channel.
    """
    listed = any(isinstance(v, list) for v in container.senders.values())
    container.senders = {c: [sender] if listed else sender for c in Channel}


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; needs at least two samples."""
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[min(98, max(0, round(q) - 1))] if q < 100 else max(samples)


def rate(count: int, seconds: float) -> float:
    """Jobs per second (0 when nothing was timed)."""
    return count / seconds if seconds > 0 else 0.0


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
