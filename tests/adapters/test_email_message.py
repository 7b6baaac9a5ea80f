"""Building an email job's message: headers, bodies and the refusals that keep it safe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart

import pytest

from commq.adapters.senders import build_email, message_id_for
from commq.adapters.senders.email_message import MESSAGE_POLICY
from commq.domain.jobs import Job

JobFactory = Callable[..., Job]

DEFAULT_FROM = "Commq <noreply@commq.test>"


def reparse(message: EmailMessage) -> EmailMessage:
    """The message as a receiver reads it off the wire."""
    raw = message.as_bytes(policy=MESSAGE_POLICY)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def content(part: MIMEPart) -> str:
    """A text part's content, with the wire's CRLF line ends read as newlines."""
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def test_message_carries_the_standard_headers_and_a_deterministic_message_id(
    make_job: JobFactory,
) -> None:
    job = make_job(payload={"subject": "Grüße", "text": "Hallo Welt\n", "replyTo": "help@x.test"})
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    first = reparse(build_email(job, DEFAULT_FROM, now=when).message)
    second = build_email(job, DEFAULT_FROM)

    assert first["From"] == DEFAULT_FROM
    assert first["To"] == job.recipient
    assert first["Subject"] == "Grüße"
    assert first["Reply-To"] == "help@x.test"
    assert first["Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert first["Message-ID"] == f"<{job.id}@commq>" == message_id_for(job)
    assert second.message["Message-ID"] == first["Message-ID"]
    assert first.get_content_type() == "text/plain"
    assert content(first) == "Hallo Welt\n"


def test_payload_from_overrides_the_default_and_sets_the_envelope_sender(
    make_job: JobFactory,
) -> None:
    job = make_job(payload={"from": "Shop <shop@x.test>", "subject": "s", "text": "t"})

    envelope = build_email(job, DEFAULT_FROM)

    assert envelope.message["From"] == "Shop <shop@x.test>"
    assert envelope.sender == "shop@x.test"
    assert envelope.recipient == job.recipient


def test_text_and_html_make_a_multipart_alternative(make_job: JobFactory) -> None:
    job = make_job(payload={"subject": "s", "text": "plain", "html": "<p>rich</p>"})

    parsed = reparse(build_email(job, DEFAULT_FROM).message)

    assert parsed.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): content(part) for part in parsed.iter_parts()}
    assert parts == {"text/plain": "plain\n", "text/html": "<p>rich</p>\n"}


def test_html_alone_makes_a_single_html_part(make_job: JobFactory) -> None:
    job = make_job(payload={"subject": "s", "html": "<p>only</p>"})

    parsed = reparse(build_email(job, DEFAULT_FROM).message)

    assert parsed.get_content_type() == "text/html"


def test_wire_form_is_seven_bit_for_any_text(make_job: JobFactory) -> None:
    job = make_job(payload={"subject": "ünïcödé", "text": "ça marche — 日本語\n"})

    raw = build_email(job, DEFAULT_FROM).message.as_bytes(policy=MESSAGE_POLICY)

    assert raw.isascii()
    assert content(reparse(build_email(job, DEFAULT_FROM).message)) == "ça marche — 日本語\n"


def test_extra_headers_are_added(make_job: JobFactory) -> None:
    headers = {"X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@x.test>"}
    job = make_job(payload={"subject": "s", "text": "t", "headers": headers})

    parsed = reparse(build_email(job, DEFAULT_FROM).message)

    assert parsed["X-Campaign"] == "spring"
    assert parsed["List-Unsubscribe"] == "<mailto:u@x.test>"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\r\nBcc: victim@x.test"},
        {"X-Evil": "a\nb"},
        {"X-Evil\r\nBcc": "victim@x.test"},
        {"X Space": "v"},
        {"X-Colon:": "v"},
        {"Bcc": "victim@x.test"},
        {"cc": "victim@x.test"},
        {"From": "ceo@x.test"},
        {"To": "other@x.test"},
        {"Subject": "other"},
        {"Message-ID": "<forged@x>"},
        {"Date": "yesterday"},
        {"Content-Type": "text/html"},
        {"content-transfer-encoding": "8bit"},
        {"X-Number": 5},
    ],
)
def test_dangerous_extra_headers_are_refused(make_job: JobFactory, headers: dict[str, str]) -> None:
    job = make_job(payload={"subject": "s", "text": "t", "headers": headers})

    with pytest.raises(ValueError, match="header"):
        build_email(job, DEFAULT_FROM)


@pytest.mark.parametrize(
    ("payload", "recipient", "problem"),
    [
        ({"subject": "a\r\nBcc: v@x.test", "text": "t"}, "ada@x.test", "line breaks"),
        ({"subject": "s", "text": "t", "from": "a@x.test, b@x.test"}, "ada@x.test", "from"),
        ({"subject": "s", "text": "t", "replyTo": "not an address"}, "ada@x.test", "replyTo"),
        ({"subject": "s", "text": "t"}, "ada@x.test\r\nBcc: v@x.test", "recipient"),
        ({"subject": "s", "text": "t"}, "ada\x01@x.test", "recipient"),
        ({"subject": "s", "text": "t"}, "jörg@x.test", "recipient"),
        ({"subject": "s", "text": "t"}, "nobody", "recipient"),
        ({"subject": "s"}, "ada@x.test", "text or html"),
        ({"subject": 3, "text": "t"}, "ada@x.test", "subject"),
    ],
)
def test_unsafe_payloads_are_refused(
    make_job: JobFactory, payload: dict[str, object], recipient: str, problem: str
) -> None:
    job = make_job(payload=payload, recipient=recipient)

    with pytest.raises(ValueError, match=problem):
        build_email(job, DEFAULT_FROM)


def test_an_internationalised_domain_is_sent_as_idna(make_job: JobFactory) -> None:
    job = make_job(recipient="Jörg <j@exämple.test>")

    envelope = build_email(job, DEFAULT_FROM)

    assert envelope.recipient == "j@xn--exmple-cua.test"
    assert reparse(envelope.message)["To"] == "Jörg <j@xn--exmple-cua.test>"
