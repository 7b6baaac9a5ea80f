"""Suppressed recipients: addresses and numbers a business must not send to any more.

A hard bounce, a spam report or an SMS STOP puts a recipient on its business's
list; later jobs to it fail at once as permanent instead of being sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from commq.domain.jobs import Channel, Job
from commq.domain.outcomes import SendOutcome, SendResult

#: Twilio's "the recipient replied STOP" error (twilio.com/docs/api/errors/21610).
TWILIO_STOP_CODE = "21610"


class SuppressionReason(StrEnum):
    """Why a recipient is suppressed."""

    #: The recipient's server said the address does not exist.
    HARD_BOUNCE = "hard_bounce"
    #: The recipient marked a message as spam.
    SPAM_REPORT = "spam_report"
    #: The recipient replied STOP to a text message.
    STOP = "stop"


_REASON_TEXT = {
    SuppressionReason.HARD_BOUNCE: "hard bounce",
    SuppressionReason.SPAM_REPORT: "spam report",
    SuppressionReason.STOP: "STOP reply",
}


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppressed recipient of one business and channel."""

    business_id: str
    channel: Channel
    recipient: str
    reason: SuppressionReason
    #: The job whose delivery taught us this, if known.
    job_id: str | None = None
    created_at: datetime | None = None


def recipient_key(channel: Channel, recipient: str) -> str:
    """The form a recipient is listed under: e-mail addresses compare case-insensitively."""
    text = recipient.strip()
    return text.lower() if channel is Channel.EMAIL else text


def key_is_ascii_lowercase(recipient: str) -> bool:
    """Whether ``recipient_key`` of ``recipient`` is the recipient itself, ASCII-lowercased
    for e-mail: an ASCII recipient with no surrounding whitespace.

    For those a database's ``lower()`` (in the C collation) computes the same key,
    so a claim can look the recipient up in the same statement; other recipients
    are looked up by the key this module computes.
    """
    return recipient.isascii() and recipient == recipient.strip()


def suppression_error(suppression: Suppression) -> str:
    """The lastError of a job refused because its recipient is suppressed."""
    reason = _REASON_TEXT[suppression.reason]
    day = "" if suppression.created_at is None else f" on {suppression.created_at.date()}"
    source = "" if suppression.job_id is None else f" (job {suppression.job_id})"
    return f"recipient is suppressed: {reason}{day}{source}"


def suppression_from_result(job: Job, result: SendResult) -> Suppression | None:
    """The suppression a send's answer implies: Twilio's 21610 means the recipient said STOP.

    Only the answer's code counts: its text quotes the number, whose digits may hold 21610.
    """
    if job.channel is not Channel.SMS or result.outcome is not SendOutcome.PERMANENT:
        return None
    if result.error_code != TWILIO_STOP_CODE:
        return None
    return Suppression(
        job.business_id,
        job.channel,
        recipient_key(job.channel, job.recipient),
        SuppressionReason.STOP,
        job.id,
    )


@dataclass(frozen=True, slots=True)
class SuppressionPage:
    """One keyset page of a suppression list."""

    items: list[Suppression]
    next_cursor: str | None = None
