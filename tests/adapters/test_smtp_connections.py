"""SMTP connection reuse, and what each reply class means, against a real aiosmtpd server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from commq.adapters.senders import SmtpSender
from commq.domain.jobs import Job
from commq.domain.outcomes import Blame, SendOutcome

if TYPE_CHECKING:
    from conftest import SmtpPeer

JobFactory = Callable[..., Job]
FROM = "Commq <noreply@commq.test>"


async def test_twenty_sequential_sends_share_one_connection(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    sender = SmtpSender(smtp_server.url, FROM, timeout=5)

    results = [await sender.send(make_job(recipient=f"u{n}@example.com")) for n in range(20)]
    await sender.close()

    assert all(r.outcome is SendOutcome.OK for r in results)
    assert len(smtp_server.handler.received) == 20
    assert smtp_server.handler.connections == 1
    # Each reuse starts with RSET, which also proves the server still listens.
    assert smtp_server.handler.rsets == 19


async def test_twenty_concurrent_sends_use_at_most_the_pool_size(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    sender = SmtpSender(smtp_server.url, FROM, timeout=5, max_connections=3)
    jobs = [make_job(recipient=f"u{n}@example.com") for n in range(20)]

    results = await asyncio.gather(*(sender.send(job) for job in jobs))
    await sender.close()

    assert all(r.outcome is SendOutcome.OK for r in results)
    received = sorted(e.rcpt_tos[0] for e in smtp_server.handler.received)
    assert received == sorted(f"u{n}@example.com" for n in range(20))
    assert smtp_server.handler.connections <= 3


async def test_a_connection_idle_too_long_is_replaced(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    sender = SmtpSender(smtp_server.url, FROM, timeout=5, max_idle=0.05)

    await sender.send(make_job())
    await asyncio.sleep(0.1)
    result = await sender.send(make_job())
    await sender.close()

    assert result.outcome is SendOutcome.OK
    assert smtp_server.handler.connections == 2
    assert smtp_server.handler.rsets == 0


async def test_a_connection_the_server_dropped_is_replaced_without_failing_the_message(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    sender = SmtpSender(smtp_server.url, FROM, timeout=5)
    await sender.send(make_job())

    smtp_server.handler.drop_connections()
    await asyncio.sleep(0.05)
    result = await sender.send(make_job())
    await sender.close()

    assert result.outcome is SendOutcome.OK
    assert len(smtp_server.handler.received) == 2
    assert smtp_server.handler.connections == 2


async def test_a_refused_recipient_keeps_the_connection_for_the_next_message(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    sender = SmtpSender(smtp_server.url, FROM, timeout=5)
    smtp_server.handler.rcpt_reply = "550 5.1.1 No such user"
    refused = await sender.send(make_job())

    smtp_server.handler.rcpt_reply = None
    accepted = await sender.send(make_job())
    await sender.close()

    assert refused.outcome is SendOutcome.PERMANENT
    assert accepted.outcome is SendOutcome.OK
    assert smtp_server.handler.connections == 1


async def test_a_421_closes_the_connection(make_job: JobFactory, smtp_server: SmtpPeer) -> None:
    sender = SmtpSender(smtp_server.url, FROM, timeout=5)
    smtp_server.handler.rcpt_reply = "421 4.3.2 Shutting down"
    closing = await sender.send(make_job())

    smtp_server.handler.rcpt_reply = None
    accepted = await sender.send(make_job())
    await sender.close()

    assert (closing.outcome, closing.blame) == (SendOutcome.TRANSIENT, Blame.PROVIDER)
    assert accepted.outcome is SendOutcome.OK
    assert smtp_server.handler.connections == 2


async def test_a_connection_is_replaced_after_its_message_limit(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    sender = SmtpSender(smtp_server.url, FROM, timeout=5, max_messages=2)

    for _ in range(5):
        await sender.send(make_job())
    await sender.close()

    assert len(smtp_server.handler.received) == 5
    assert smtp_server.handler.connections == 3


# ---------------------------------------------------------------- reply classes


@pytest.mark.parametrize(
    ("reply", "outcome", "blame"),
    [
        # 4.2.x mailbox: this recipient, for now.
        ("452 4.2.2 Mailbox full", SendOutcome.TRANSIENT, Blame.MESSAGE),
        ("450 4.2.1 Mailbox temporarily disabled", SendOutcome.TRANSIENT, Blame.MESSAGE),
        # 4.3.x / 4.4.x: the server's own trouble.
        ("451 4.3.0 Temporary lookup failure", SendOutcome.TRANSIENT, Blame.PROVIDER),
        ("452 4.3.1 Insufficient system storage", SendOutcome.TRANSIENT, Blame.PROVIDER),
        ("451 4.4.3 Directory server failure", SendOutcome.TRANSIENT, Blame.PROVIDER),
        # Throttling.
        (
            "454 Throttling failure: Maximum sending rate exceeded",
            SendOutcome.TRANSIENT,
            Blame.RATE_LIMIT,
        ),
        ("452 4.5.3 Too many recipients", SendOutcome.TRANSIENT, Blame.RATE_LIMIT),
        # Greylisting and other 4xx.
        ("451 4.7.1 Greylisted, try again later", SendOutcome.TRANSIENT, Blame.MESSAGE),
        # 5.x.x: permanent for the message.
        ("550 5.1.1 <x@y>: Recipient address rejected", SendOutcome.PERMANENT, Blame.MESSAGE),
        ("554 5.7.1 Message refused", SendOutcome.PERMANENT, Blame.MESSAGE),
        ("552 5.3.4 Message too big", SendOutcome.PERMANENT, Blame.MESSAGE),
        # ... except our own authentication.
        ("530 5.7.0 Authentication required", SendOutcome.PERMANENT, Blame.PROVIDER),
        # An enhanced code that contradicts the reply code is not trusted.
        ("550 4.2.2 Mailbox full?", SendOutcome.PERMANENT, Blame.MESSAGE),
    ],
)
async def test_replies_are_classified_by_enhanced_code_then_reply_code(
    make_job: JobFactory,
    smtp_server: SmtpPeer,
    reply: str,
    outcome: SendOutcome,
    blame: Blame,
) -> None:
    smtp_server.handler.rcpt_reply = reply
    sender = SmtpSender(smtp_server.url, FROM, timeout=5)

    result = await sender.send(make_job())
    await sender.close()

    assert (result.outcome, result.blame) == (outcome, blame)
    assert result.error == f"SMTP {reply} (at RCPT TO)"


async def test_wrong_credentials_are_a_provider_fault(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    sender = SmtpSender(f"smtp://alice:wrong@127.0.0.1:{smtp_server.port}", FROM, timeout=5)

    result = await sender.send(make_job())
    await sender.close()

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.PROVIDER)
    assert result.error is not None
    assert result.error.startswith("SMTP 535 5.7.8")


async def test_a_refused_connection_is_a_provider_outage(
    make_job: JobFactory, closed_port: int
) -> None:
    sender = SmtpSender(f"smtp://127.0.0.1:{closed_port}", FROM, timeout=5)

    result = await sender.send(make_job())
    await sender.close()

    assert (result.outcome, result.blame) == (SendOutcome.TRANSIENT, Blame.PROVIDER)


async def test_silence_after_the_content_is_ambiguous(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    smtp_server.handler.data_stall = 2.0
    sender = SmtpSender(smtp_server.url, FROM, timeout=0.3)

    result = await sender.send(make_job())
    await sender.close()

    assert (result.outcome, result.blame) == (SendOutcome.AMBIGUOUS, Blame.PROVIDER)
