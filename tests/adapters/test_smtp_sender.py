"""The SMTP sender against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
from aiosmtpd.smtp import Envelope

from commq.adapters.senders import SmtpSender, SmtpServer, parse_smtp_url
from commq.domain.jobs import Job
from commq.domain.outcomes import Blame, SendOutcome, SendResult

if TYPE_CHECKING:
    from conftest import SmtpPeer

JobFactory = Callable[..., Job]
FROM = "Commq <noreply@commq.test>"


def parsed(envelope: Envelope) -> EmailMessage:
    assert isinstance(envelope.content, bytes)
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def send_once(url: str, job: Job, timeout: float = 5.0) -> SendResult:
    sender = SmtpSender(url, FROM, timeout=timeout)
    try:
        return await sender.send(job)
    finally:
        await sender.close()


# ---------------------------------------------------------------- success


async def test_a_message_is_delivered_with_its_headers(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    job = make_job(payload={"subject": "Your receipt", "text": "Thanks!\n.a line with a dot\n"})

    result = await send_once(smtp_server.url, job)

    assert result.outcome is SendOutcome.OK
    assert result.provider == "smtp"
    assert result.provider_message_id == f"<{job.id}@commq>"
    [envelope] = smtp_server.handler.received
    assert envelope.mail_from == "noreply@commq.test"
    assert envelope.rcpt_tos == ["ada@example.com"]
    message = parsed(envelope)
    assert message["From"] == FROM
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your receipt"
    assert message["Message-ID"] == f"<{job.id}@commq>"
    # aiosmtpd undoes dot-stuffing, so a line starting with "." arrives as written.
    body = message.get_content()
    assert body.replace("\r\n", "\n") == "Thanks!\n.a line with a dot\n"


async def test_the_provider_message_id_stays_the_message_id_when_the_server_names_a_queue_id(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    # The queue id is one hop's, worded per MTA and absent from some replies; the
    # Message-ID is what bounces quote and what the server logs beside its queue id.
    smtp_server.handler.data_reply = "250 2.0.0 Ok: queued as 4F3A21C0B9"
    job = make_job()

    result = await send_once(smtp_server.url, job)

    assert result.outcome is SendOutcome.OK
    assert result.provider_message_id == f"<{job.id}@commq>"


async def test_one_sender_delivers_several_messages(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    sender = SmtpSender(smtp_server.url, FROM, timeout=5)
    jobs = [make_job(recipient=f"user{n}@example.com") for n in range(3)]

    results = await asyncio.gather(*(sender.send(job) for job in jobs))
    await sender.close()

    assert [r.outcome for r in results] == [SendOutcome.OK] * 3
    received = sorted(e.rcpt_tos[0] for e in smtp_server.handler.received)
    assert received == ["user0@example.com", "user1@example.com", "user2@example.com"]


async def test_credentials_in_the_url_are_decoded_and_used(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    url = f"smtp://alice:p%40ss%3Aword@127.0.0.1:{smtp_server.port}"

    result = await send_once(url, make_job())

    assert result.outcome is SendOutcome.OK
    assert smtp_server.handler.logins == [(b"alice", b"p@ss:word")]


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("451 4.3.0 Temporary lookup failure", SendOutcome.TRANSIENT),
        ("452 4.2.2 Mailbox full", SendOutcome.TRANSIENT),
        ("550 5.1.1 <x@y>: Recipient address rejected", SendOutcome.PERMANENT),
        ("553 5.1.3 Bad recipient address syntax", SendOutcome.PERMANENT),
    ],
)
async def test_a_refused_recipient_is_classified_by_its_reply_code(
    make_job: JobFactory, smtp_server: SmtpPeer, reply: str, outcome: SendOutcome
) -> None:
    smtp_server.handler.rcpt_reply = reply

    result = await send_once(smtp_server.url, make_job())

    assert result.outcome is outcome
    assert result.error is not None
    assert result.error.startswith(f"SMTP {reply}")
    assert "RCPT TO" in result.error
    assert smtp_server.handler.received == []


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("451 4.3.0 Try again later", SendOutcome.TRANSIENT),
        ("554 5.7.1 Message rejected as spam", SendOutcome.PERMANENT),
    ],
)
async def test_a_refusal_at_data_is_classified_by_its_reply_code(
    make_job: JobFactory, smtp_server: SmtpPeer, reply: str, outcome: SendOutcome
) -> None:
    smtp_server.handler.data_reply = reply

    result = await send_once(smtp_server.url, make_job())

    assert result.outcome is outcome
    assert result.error is not None
    assert result.error.startswith(f"SMTP {reply}")


async def test_a_refused_sender_is_permanent(make_job: JobFactory, smtp_server: SmtpPeer) -> None:
    smtp_server.handler.mail_reply = "553 5.7.1 Sender address rejected: not owned by you"

    result = await send_once(smtp_server.url, make_job())

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error is not None
    assert "553 5.7.1 Sender address rejected" in result.error


async def test_wrong_credentials_are_permanent(make_job: JobFactory, smtp_server: SmtpPeer) -> None:
    url = f"smtp://alice:wrong@127.0.0.1:{smtp_server.port}"

    result = await send_once(url, make_job())

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error is not None
    assert result.error.startswith("SMTP 535")


async def test_no_answer_after_the_content_is_ambiguous(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    smtp_server.handler.data_stall = 3.0

    result = await send_once(smtp_server.url, make_job(), timeout=0.3)

    assert result.outcome is SendOutcome.AMBIGUOUS
    assert result.error is not None
    assert "timed out" in result.error
    assert "may have accepted" in result.error


async def test_a_hang_up_after_the_content_is_ambiguous(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    smtp_server.handler.hang_up_after_data = True

    result = await send_once(smtp_server.url, make_job())

    assert result.outcome is SendOutcome.AMBIGUOUS


async def test_a_hang_up_before_the_content_is_transient(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    smtp_server.handler.hang_up_at_mail = True

    result = await send_once(smtp_server.url, make_job())

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error is not None
    assert "MAIL FROM" in result.error


async def test_a_refused_connection_is_transient(make_job: JobFactory, closed_port: int) -> None:
    result = await send_once(f"smtp://127.0.0.1:{closed_port}", make_job())

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error is not None
    assert "connection setup" in result.error


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never greets."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_server_that_never_greets_is_transient(
    make_job: JobFactory, silent_server: int
) -> None:
    result = await send_once(f"smtp://127.0.0.1:{silent_server}", make_job(), timeout=0.3)

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error is not None
    assert "timed out" in result.error


@pytest.mark.parametrize(
    ("greeting", "outcome"),
    [
        (b"421 4.3.2 Too busy, try later\r\n", SendOutcome.TRANSIENT),
        (b"554 5.7.1 You are not welcome here\r\n", SendOutcome.PERMANENT),
    ],
)
async def test_a_refusing_greeting_is_a_provider_fault_classified_by_its_code(
    make_job: JobFactory, greeting: bytes, outcome: SendOutcome
) -> None:
    # No message was involved yet: whatever the server refuses, it refuses for every message.
    async def refuse(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await send_once(f"smtp://127.0.0.1:{port}", make_job())
    finally:
        server.close()
        await server.wait_closed()

    assert (result.outcome, result.blame) == (outcome, Blame.PROVIDER)
    assert result.error is not None
    assert result.error.startswith(f"SMTP {greeting.decode().strip()}")


async def test_a_reply_in_latin_1_with_a_nul_is_quoted_as_storable_text(
    make_job: JobFactory,
) -> None:
    # aiosmtplib decodes reply bytes that are not UTF-8 into lone surrogates, which no
    # database column can take, and PostgreSQL text cannot hold NUL: the result would
    # never be recorded, and the message sent again when its lease ran out.
    replies = {b"EHLO": b"250 mx.test\r\n", b"MAIL": b"250 OK\r\n"}
    writers: list[asyncio.StreamWriter] = []

    async def converse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.write(b"220 mx.test ESMTP\r\n")
        while line := await reader.readline():
            verb = line.split(b" ", 1)[0].strip().upper()
            writer.write(replies.get(verb, b"550 5.1.1 Empf\xe4nger\x00 unbekannt\r\n"))
            await writer.drain()

    server = await asyncio.start_server(converse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await send_once(f"smtp://127.0.0.1:{port}", make_job())
    finally:
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.MESSAGE)
    assert result.error == "SMTP 550 5.1.1 Empf\ufffdnger unbekannt (at RCPT TO)"


async def test_a_bad_header_is_permanent_without_connecting(
    make_job: JobFactory, smtp_server: SmtpPeer
) -> None:
    payload = {"subject": "s", "text": "t", "headers": {"X-Tag": "a\r\nBcc: all@x.test"}}

    result = await send_once(smtp_server.url, make_job(payload=payload))

    assert result.outcome is SendOutcome.PERMANENT
    assert smtp_server.handler.received == []
    assert smtp_server.handler.logins == []


# ---------------------------------------------------------------- URL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.test", SmtpServer("mail.test", 25)),
        ("smtp://mail.test:2525", SmtpServer("mail.test", 2525)),
        ("smtp://mail.test?starttls=true", SmtpServer("mail.test", 587, starttls=True)),
        ("smtps://mail.test", SmtpServer("mail.test", 465, implicit_tls=True)),
        (
            "smtps://us%40r:p%2Fw@mail.test:4650",
            SmtpServer("mail.test", 4650, "us@r", "p/w", implicit_tls=True),
        ),
    ],
)
def test_smtp_urls_are_read(url: str, expected: SmtpServer) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.test",
        "smtp://",
        "smtp://mail.test?starttls=maybe",
        "smtp://mail.test?tls=1",
        "smtps://mail.test?starttls=true",
    ],
)
def test_bad_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_url(url)
