"""Delivery events: what a provider reports after it took a message.

``deliveryStatus`` only moves forward: ``accepted`` comes before every final
status, and the first final status (delivered, bounced, dropped, undelivered)
stays, so a late or repeated event never undoes a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from commq.domain.jobs import DeliveryStatus
from commq.domain.suppression import SuppressionReason

_RANK = {
    DeliveryStatus.ACCEPTED: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.BOUNCED: 2,
    DeliveryStatus.DROPPED: 2,
    DeliveryStatus.UNDELIVERED: 2,
}


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One provider event about one message, already verified and parsed."""

    provider: str
    #: The provider's id of this event, to drop duplicates (SendGrid's sg_event_id).
    event_id: str
    #: The job id the message carried (SendGrid custom argument), if any.
    job_id: str | None
    #: The provider's id of the message (SendGrid X-Message-Id, Twilio MessageSid).
    provider_message_id: str | None
    #: The status the event reports (None: it changes no status).
    status: DeliveryStatus | None = None
    #: Set when the event means the recipient must not be sent to again.
    suppress: SuppressionReason | None = None


def replaceable_by(status: DeliveryStatus) -> frozenset[DeliveryStatus]:
    """The current statuses ``status`` may overwrite (besides none at all)."""
    rank = _RANK[status]
    return frozenset(s for s, r in _RANK.items() if r < rank)


def advances(current: DeliveryStatus | None, new: DeliveryStatus) -> bool:
    """Whether ``new`` may replace ``current``."""
    return current is None or current in replaceable_by(new)


class EventEffect(StrEnum):
    """What applying one delivery event did."""

    #: The event was seen before: nothing changed.
    DUPLICATE = "duplicate"
    #: No job matches the event: nothing changed.
    UNKNOWN_JOB = "unknown_job"
    #: The job's deliveryStatus moved forward (and/or its recipient was suppressed).
    APPLIED = "applied"
    #: The job already had this status or a later one.
    STALE = "stale"
