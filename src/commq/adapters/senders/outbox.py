"""The outbox sender: each message becomes a file in a directory, for development and audits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from commq.adapters.senders.email_message import MESSAGE_POLICY, build_email, single_address
from commq.domain.jobs import Channel, Job
from commq.domain.outcomes import SendOutcome, SendResult

# Job ids are UUIDs; anything else must not be able to name a path outside the outbox.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class OutboxSender:
    """Writes each job's message to ``directory`` instead of sending it.

    email → ``<id>.eml`` (the RFC 5322 bytes), sms → ``<id>.sms.json``
    (``{"to", "body"}``), webhook → ``<id>.webhook.json`` (``{"url", "headers",
    "body"}``). Files appear atomically (temporary file, then rename), so a
    reader never sees half a message, and a retry overwrites the same file.
    """

    name = "outbox"

    def __init__(self, directory: Path, email_from: str) -> None:
        single_address("sender address", email_from)
        self._directory = Path(directory)
        self._email_from = email_from

    async def send(self, job: Job) -> SendResult:
        """Write the message; a bad payload is permanent, a disk error transient."""
        try:
            file_name, content = self._render(job)
        except ValueError as exc:
            return SendResult(SendOutcome.PERMANENT, self.name, error=str(exc))
        try:
            await asyncio.to_thread(_write_atomically, self._directory, file_name, content)
        except OSError as exc:
            return SendResult(SendOutcome.TRANSIENT, self.name, error=f"outbox write failed: {exc}")
        return SendResult.ok(self.name, provider_message_id=file_name)

    async def close(self) -> None:
        """Nothing to release: files are closed as soon as they are written."""

    def _render(self, job: Job) -> tuple[str, bytes]:
        if not _SAFE_ID.fullmatch(job.id):
            raise ValueError(f"job id {job.id!r} cannot name an outbox file")
        if job.channel is Channel.EMAIL:
            envelope = build_email(job, self._email_from)
            return f"{job.id}.eml", envelope.message.as_bytes(policy=MESSAGE_POLICY)
        if job.channel is Channel.SMS:
            body = job.payload.get("body")
            if not isinstance(body, str):
                raise ValueError("sms payload needs a string body")
            return f"{job.id}.sms.json", _json({"to": job.recipient, "body": body})
        if job.channel is Channel.WEBHOOK:
            document = {
                "url": job.recipient,
                "headers": job.payload.get("headers") or {},
                "body": job.payload.get("body"),
            }
            return f"{job.id}.webhook.json", _json(document)
        raise ValueError(f"the outbox cannot send {job.channel!r} jobs")


def _json(document: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload is not JSON: {exc}") from exc
    return text.encode("utf-8") + b"\n"


def _write_atomically(directory: Path, file_name: str, content: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    # The temporary file lives in the same directory so os.replace is a same-filesystem rename.
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{file_name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(content)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, directory / file_name)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
