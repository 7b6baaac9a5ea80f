"""The seed's use cases end to end, over a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from commq.entrypoints.settings import Settings
from serving import free_port

from .conftest import base_settings, running, with_providers

Q = "/communication-queue"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """These use cases run on both SQLite and PostgreSQL."""
    return base_settings(database_url, tmp_path)


class Mailbox:
    """An SMTP peer that keeps what it accepts and refuses one address for good."""

    def __init__(self) -> None:
        self.received: list[Any] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.com>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


async def test_a_permanent_smtp_error_fails_the_job_at_once_and_others_are_sent(
    settings: Settings, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    smtp = with_providers(settings, "email=smtp", smtp_url=f"smtp://127.0.0.1:{port}")
    async with running(smtp) as api:
        good = await api.enqueue("acme_producer", recipient="ana@example.com")
        bad = await api.enqueue("acme_producer", recipient="nobody@example.com")
        processed = await api.client.post(f"{Q}/process-now", headers=api.as_("acme_admin"))
        assert processed.json()["processed"] == 2
        failed = await api.client.get(f"{Q}/failed", headers=api.as_("acme_support"))
        [job] = failed.json()
        assert job["id"] == bad["id"]
        assert job["errorType"] == "permanent" and job["attempts"] == 1
        assert "550" in job["lastError"]
        sent = await api.client.get(f"{Q}/{good['id']}", headers=api.as_("acme_support"))
        assert sent.json()["status"] == "completed" and sent.json()["provider"] == "smtp"
    assert [env.rcpt_tos for env in box.received] == [["ana@example.com"]]


async def test_a_customer_report_is_debugged_through_by_communication(
    settings: Settings, mailbox: tuple[Mailbox, int]
) -> None:
    _, port = mailbox
    smtp = with_providers(settings, "email=smtp", smtp_url=f"smtp://127.0.0.1:{port}")
    async with running(smtp) as api:
        await api.enqueue("acme_producer", recipient="nobody@example.com", communicationId="c-9")
        await api.client.post(f"{Q}/process-now", headers=api.as_("acme_admin"))
        [job] = (
            await api.client.get(f"{Q}/by-communication/c-9", headers=api.as_("acme_support"))
        ).json()
        [attempt] = job["history"]
        assert attempt["outcome"] == "permanent_error" and "550" in attempt["error"]
        retried = await api.client.post(f"{Q}/{job['id']}/retry", headers=api.as_("acme_support"))
        assert retried.json()["job"]["status"] == "pending"


async def test_a_backlog_is_drained_with_process_now(settings: Settings) -> None:
    async with running(settings) as api:
        jobs = [
            {"channel": "sms", "recipient": f"+1415555{i:04d}", "payload": {"body": "x"}}
            for i in range(250)
        ]
        await api.client.post(
            f"{Q}/jobs/batch", json={"jobs": jobs}, headers=api.as_("acme_producer")
        )
        done = await api.client.post(f"{Q}/process-now", headers=api.as_("acme_admin"))
        assert done.json()["processed"] == 250
        stats = (await api.client.get(f"{Q}/stats", headers=api.as_("acme_admin"))).json()
        assert stats["completed"] == 250 and stats["pending"] == 0
        assert stats["avgProcessingTimeSeconds"] is not None
