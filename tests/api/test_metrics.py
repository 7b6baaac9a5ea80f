"""GET /metrics: Prometheus text that parses, gauges from the database, send metrics that
move, bounded labels, the optional token, and the Grafana dashboard that reads them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from commq.adapters.store import make_engine
from commq.entrypoints.api.app import create_app
from commq.entrypoints.settings import Settings

from .conftest import Api, running

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-commq.json"
#: Every label commq exposes; anything else (a job id, a recipient) must never appear.
ALLOWED_LABELS = {"status", "channel", "provider", "outcome", "worker", "le", "state"}


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, **headers: str) -> tuple[str, Samples]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def test_job_gauges_count_by_status_and_channel(api: Api) -> None:
    await api.enqueue("acme_producer")
    await api.enqueue("acme_producer")
    await api.enqueue(
        "globex_producer", channel="sms", recipient="+14155550100", payload={"body": "x"}
    )
    _, samples = await scrape(api.client)
    assert value(samples, "commq_jobs", status="pending", channel="email") == 2
    assert value(samples, "commq_jobs", status="pending", channel="sms") == 1
    assert total(samples, "commq_jobs") == 3


async def test_the_oldest_due_job_gives_the_pending_age(api: Api) -> None:
    _, samples = await scrape(api.client)
    assert value(samples, "commq_oldest_pending_age_seconds") == 0
    await api.enqueue("acme_producer", runAt="2020-01-01T00:00:00Z")
    _, samples = await scrape(api.client)
    assert value(samples, "commq_oldest_pending_age_seconds") > 3 * 365 * 24 * 3600


async def test_sends_move_the_counters_and_histograms(api: Api) -> None:
    for _ in range(2):
        await api.enqueue("acme_producer")
    await api.enqueue(
        "acme_producer", channel="sms", recipient="+14155550100", payload={"body": "x"}
    )
    _, before = await scrape(api.client)
    assert total(before, "commq_sends_total") == 0
    sent = await api.client.post("/communication-queue/process-now", headers=api.as_("admin"))
    assert sent.json()["processed"] == 3
    _, after = await scrape(api.client)
    assert value(after, "commq_sends_total", provider="outbox", outcome="ok") == 3
    email = {"channel": "email", "provider": "outbox"}
    assert value(after, "commq_send_duration_seconds_count", **email) == 2
    assert value(after, "commq_send_duration_seconds_bucket", le="+Inf", **email) == 2
    assert value(after, "commq_queue_wait_seconds_count", channel="sms") == 1
    assert value(after, "commq_jobs", status="completed", channel="email") == 2
    assert value(after, "commq_jobs", status="pending", channel="email") == 0


async def test_no_label_names_a_job_or_a_recipient(api: Api) -> None:
    await api.enqueue("acme_producer")
    await api.client.post("/communication-queue/process-now", headers=api.as_("admin"))
    text, samples = await scrape(api.client)
    labels = {name for _, pairs in samples for name, _ in pairs}
    assert labels <= ALLOWED_LABELS
    assert "ana@example.com" not in text


@pytest.fixture
async def token_api(settings: Settings) -> AsyncIterator[Api]:
    async with running(replace(settings, metrics_token="s3cret")) as built:
        yield built


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Bearer s3cre", "Basic s3cret", "Bearers3cret", "s3cret"]
)
async def test_a_configured_token_is_required(token_api: Api, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = await token_api.client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_right_token_reads_the_metrics(token_api: Api, scheme: str) -> None:
    _, samples = await scrape(token_api.client, Authorization=f"{scheme} s3cret")
    assert ("commq_oldest_pending_age_seconds", frozenset()) in samples


async def test_the_in_process_worker_reports_heartbeats(settings: Settings) -> None:
    app = create_app(settings, run_worker=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://commq.test") as client:
            _, samples = await scrape(client)
    beats = {
        dict(k[1])["worker"]: v for k, v in samples.items() if k[0].startswith("commq_worker_h")
    }
    assert len(beats) == 1
    [(worker, at)] = beats.items()
    assert abs(at - time.time()) < 30
    assert value(samples, "commq_worker_in_flight", worker=worker) == 0


async def test_each_app_keeps_its_own_registry(settings: Settings, tmp_path: Path) -> None:
    async with running(settings) as first, running(settings) as second:
        await first.enqueue("acme_producer")
        await first.client.post("/communication-queue/process-now", headers=first.as_("admin"))
        _, seen_by_second = await scrape(second.client)
    assert total(seen_by_second, "commq_sends_total") == 0
    assert first.container.metrics.registry is not second.container.metrics.registry


def _panel_queries(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


async def test_the_grafana_dashboard_reads_only_metrics_commq_exposes(api: Api) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    [source] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    await api.enqueue("acme_producer")
    await api.client.post("/communication-queue/process-now", headers=api.as_("admin"))
    text, _ = await scrape(api.client)
    exposed = set(re.findall(r"^(commq_\w+)", text, re.MULTILINE))
    exposed.add("commq_worker_heartbeat_timestamp_seconds")  # only where a worker runs
    exposed.add("commq_worker_in_flight")
    used = {name for expr in _panel_queries(dashboard) for name in re.findall(r"commq_\w+", expr)}
    assert used and used <= exposed, used - exposed
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("jobs by status", "send rate", "send duration", "queue wait", "oldest", "worker"):
        assert topic in titles


async def test_a_database_failure_fails_the_scrape_with_503(api: Api, tmp_path: Path) -> None:
    original = api.container.engine
    # An empty database file: every query fails (no tables).
    api.container.engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        response = await api.client.get("/metrics")
    finally:
        await api.container.engine.dispose()
        api.container.engine = original
    assert response.status_code == 503
    assert response.json()["detail"].startswith("database unavailable")


async def test_each_providers_circuit_state_is_a_gauge(api: Api) -> None:
    _, samples = await scrape(api.client)
    assert value(samples, "commq_circuit_state", provider="outbox", state="closed") == 1
    assert value(samples, "commq_circuit_state", provider="outbox", state="open") == 0
