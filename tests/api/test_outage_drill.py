"""The outage drill of issue 4: SendGrid answers 503 for a while under a backlog, then recovers.

Three workers share one PostgreSQL database, as on three machines;
``email=sendgrid|smtp`` with rate limits on both. Every message is sent
exactly once, none fails because of the outage, no attempt is used up, the
fake SendGrid never sees more requests per second than the limit, and the
SMTP peer carries the traffic while SendGrid is down.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import text

from commq.adapters.senders import SendGridSender
from commq.domain.jobs import Channel
from commq.domain.ratelimit import parse_rate_limits
from commq.entrypoints.settings import ReliabilitySettings, parse_providers
from fakes import Fail, FakeSendGrid, Ok

from .conftest import Api, base_settings, running

BACKLOG = 200
OUTAGE_SECONDS = 3.0
SENDGRID_LIMIT = 40
#: The fake stamps a request in a server thread that waits for the GIL behind three
#: workers and the API, so its clock lags by a few ms to tens of ms on a busy 2-core
#: machine. The limiter leaves 3 % (30 ms a second) of headroom for such lags; the
#: check leaves the harness the same, so a send stamped late cannot push the window
#: edge over the limit (CI once saw 41 in one second). An unlimited or bursting
#: limiter still shows far more than the limit in 0.97 s.
CLOCK_SLACK = 0.03
API_KEY = "SG.drill-key"


class SmtpSink:
    """An SMTP peer that takes every message and notes when, by Message-ID."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode()
        self.received.append((time.time(), str(message_from_bytes(data)["Message-ID"])))
        return "250 2.0.0 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def _enqueue_backlog(api: Api) -> list[str]:
    jobs = [
        {
            "channel": "email",
            "recipient": f"user{i}@example.com",
            "payload": {"subject": f"Order {i}", "text": "Your order has shipped."},
        }
        for i in range(BACKLOG)
    ]
    answer = await api.client.post(
        "/communication-queue/jobs/batch", json={"jobs": jobs}, headers=api.as_("acme_producer")
    )
    assert answer.status_code == 201, answer.text
    return [job["id"] for job in answer.json()["jobs"]]


async def _until_done(api: Api, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = await api.client.get("/communication-queue/stats", headers=api.as_("admin"))
        body: dict[str, Any] = stats.json()
        if body["completed"] + body["failed"] >= BACKLOG or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def _audit_actions(api: Api) -> list[str]:
    async with api.container.engine.connect() as conn:
        rows = await conn.execute(text("SELECT action FROM audit_events ORDER BY id"))
        return [row[0] for row in rows]


@pytest.mark.postgres
async def test_a_sendgrid_outage_under_a_backlog_is_a_non_event(
    postgres_url: str, tmp_path: Path, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, smtp_port = smtp_sink
    settings = replace(
        base_settings(postgres_url, tmp_path),
        providers=parse_providers("email=smtp"),
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        email_from="shop@example.com",
        lease_seconds=10.0,
        reliability=ReliabilitySettings(
            rate_limits=parse_rate_limits(f"sendgrid={SENDGRID_LIMIT}/s,smtp=25/s"),
            circuit_cooldown=1.0,
            circuit_threshold=5,
        ),
    )
    with FakeSendGrid(api_key=API_KEY) as sendgrid:
        sendgrid.set_mode(Fail(503))
        async with running(settings) as api:
            # COMMQ_PROVIDERS="email=sendgrid|smtp": the SendGrid sender goes first.
            primary = SendGridSender(
                API_KEY, email_from="shop@example.com", base_url=sendgrid.base_url
            )
            api.container.senders[Channel.EMAIL].insert(0, primary)
            ids = await _enqueue_backlog(api)
            workers = [api.container.dispatcher(concurrency=10) for _ in range(3)]
            running_workers = [asyncio.create_task(w.run()) for w in workers]
            await asyncio.sleep(OUTAGE_SECONDS)
            recovered_at = time.time()
            sendgrid.set_mode(Ok())
            stats = await _until_done(api, timeout=45)
            for worker in workers:
                worker.stop()
            await asyncio.gather(*running_workers)
            await primary.close()
            listed = await api.client.get(
                "/communication-queue/jobs", params={"limit": 500}, headers=api.as_("admin")
            )
            jobs = listed.json()["items"]
            actions = await _audit_actions(api)
            failed_over = next(j for j in jobs if j["provider"] == "smtp")
            detail = await api.client.get(
                f"/communication-queue/{failed_over['id']}", headers=api.as_("admin")
            )

    # None failed because of the outage, and no attempt was used up by it.
    assert (stats["completed"], stats["failed"]) == (BACKLOG, 0)
    assert {(j["status"], j["attempts"]) for j in jobs} == {("completed", 1)}
    # Every message went out exactly once, across both peers.
    by_sendgrid = [body["custom_args"]["commq_job_id"] for _, body in sendgrid.accepted]
    by_smtp = [message_id.strip("<>").split("@")[0] for _, message_id in sink.received]
    assert len(by_sendgrid) + len(by_smtp) == BACKLOG
    assert sorted(by_sendgrid + by_smtp) == sorted(ids)
    # The SMTP peer carried the traffic during the outage; SendGrid took it back after.
    assert any(at < recovered_at for at, _ in sink.received)
    assert by_sendgrid
    # The circuit spared the dead provider: the 5 failures that opened it, a probe per
    # cool-down and the few sends already on their way (without it: ~120 requests).
    outage_requests = [r for r in sendgrid.requests if r.status == 503]
    assert 5 <= len(outage_requests) <= 20
    assert sendgrid.peak_rate(1.0 - CLOCK_SLACK) <= SENDGRID_LIMIT
    assert {"circuit.open", "circuit.half_open", "circuit.close"} <= set(actions)
    # The history names the provider of each attempt.
    history = [(a["provider"], a["outcome"]) for a in detail.json()["history"]]
    assert history[-1] == ("smtp", "succeeded")
    assert sendgrid.errors == []
