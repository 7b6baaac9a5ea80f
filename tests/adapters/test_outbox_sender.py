"""The outbox sender writes one file per message, atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from commq.adapters.senders import OutboxSender
from commq.domain.jobs import Channel, Job
from commq.domain.outcomes import SendOutcome

JobFactory = Callable[..., Job]

FROM = "Commq <noreply@commq.test>"


def listing(directory: Path) -> list[str] | None:
    """The file names in ``directory``, or None when it was never created."""
    if not directory.exists():
        return None
    return sorted(path.name for path in directory.iterdir())


@pytest.fixture
def outbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "outbox" / "nested"


async def test_email_becomes_an_eml_file_that_parses_back(
    make_job: JobFactory, outbox_dir: Path
) -> None:
    sender = OutboxSender(outbox_dir, FROM)
    job = make_job(payload={"subject": "Welcome", "text": "Hi Ada", "html": "<b>Hi Ada</b>"})

    result = await sender.send(job)
    await sender.close()

    assert result.outcome is SendOutcome.OK
    assert result.provider == "outbox"
    assert result.provider_message_id == f"{job.id}.eml"
    parsed = message_from_bytes((outbox_dir / f"{job.id}.eml").read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["From"] == FROM
    assert parsed["To"] == "ada@example.com"
    assert parsed["Subject"] == "Welcome"
    assert parsed["Message-ID"] == f"<{job.id}@commq>"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    assert text is not None
    assert text.get_content().strip() == "Hi Ada"


async def test_a_retry_rewrites_the_same_file_with_the_same_message_id(
    make_job: JobFactory, outbox_dir: Path
) -> None:
    sender = OutboxSender(outbox_dir, FROM)
    job = make_job()

    await sender.send(job)
    await sender.send(job)

    assert listing(outbox_dir) == [f"{job.id}.eml"]  # and no temporary file left behind
    raw = (outbox_dir / f"{job.id}.eml").read_bytes()
    assert f"Message-ID: <{job.id}@commq>".encode() in raw


async def test_sms_becomes_a_json_file(make_job: JobFactory, outbox_dir: Path) -> None:
    sender = OutboxSender(outbox_dir, FROM)
    job = make_job(Channel.SMS, payload={"body": "Code: 123456 ✓"})

    result = await sender.send(job)

    assert result.provider_message_id == f"{job.id}.sms.json"
    document = json.loads((outbox_dir / f"{job.id}.sms.json").read_text("utf-8"))
    assert document == {"to": "+15551234567", "body": "Code: 123456 ✓"}


async def test_webhook_becomes_a_json_file(make_job: JobFactory, outbox_dir: Path) -> None:
    sender = OutboxSender(outbox_dir, FROM)
    payload = {"body": {"event": "paid", "items": [1, 2]}, "headers": {"X-Sig": "abc"}}
    job = make_job(Channel.WEBHOOK, payload=payload)

    result = await sender.send(job)

    assert result.provider_message_id == f"{job.id}.webhook.json"
    document = json.loads((outbox_dir / f"{job.id}.webhook.json").read_text("utf-8"))
    assert document == {
        "url": "https://hooks.example.com/in",
        "headers": {"X-Sig": "abc"},
        "body": {"event": "paid", "items": [1, 2]},
    }


async def test_header_injection_is_permanent_and_writes_nothing(
    make_job: JobFactory, outbox_dir: Path
) -> None:
    sender = OutboxSender(outbox_dir, FROM)
    headers = {"X-Note": "hi\r\nBcc: everyone@x.test"}
    job = make_job(payload={"subject": "s", "text": "t", "headers": headers})

    result = await sender.send(job)

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error is not None
    assert "X-Note" in result.error
    assert listing(outbox_dir) is None


async def test_sms_without_a_text_body_is_permanent(make_job: JobFactory, outbox_dir: Path) -> None:
    result = await OutboxSender(outbox_dir, FROM).send(make_job(Channel.SMS, payload={}))

    assert result.outcome is SendOutcome.PERMANENT


async def test_a_job_id_that_could_escape_the_directory_is_permanent(
    make_job: JobFactory, outbox_dir: Path
) -> None:
    result = await OutboxSender(outbox_dir, FROM).send(make_job(job_id="../../etc/passwd"))

    assert result.outcome is SendOutcome.PERMANENT
    assert listing(outbox_dir) is None


async def test_a_disk_error_is_transient(make_job: JobFactory, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the outbox should be")

    result = await OutboxSender(blocker, FROM).send(make_job())

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error is not None
    assert "outbox write failed" in result.error


def test_a_bad_default_sender_address_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sender address"):
        OutboxSender(tmp_path, "not an address")
