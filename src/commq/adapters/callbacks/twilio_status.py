"""Twilio's message status callbacks.

Verification (twilio.com/docs/usage/webhooks/webhooks-security): the
``X-Twilio-Signature`` header is base64 of HMAC-SHA1, keyed with the account's
auth token, over the full URL Twilio called followed by every POST parameter
sorted by name, each as name + value with no separators.

Statuses (twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks):
queued, sending, sent, delivered, undelivered, failed (and accepted, read …).
``ErrorCode`` 21610 means the recipient replied STOP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from commq.adapters.callbacks.identifiers import event_key, stored_text
from commq.adapters.callbacks.signatures import SignatureError
from commq.domain.delivery import DeliveryEvent
from commq.domain.jobs import DeliveryStatus
from commq.domain.suppression import TWILIO_STOP_CODE, SuppressionReason

PROVIDER = "twilio"
SIGNATURE_HEADER = "x-twilio-signature"

_STATUS = {
    "accepted": DeliveryStatus.ACCEPTED,
    "queued": DeliveryStatus.ACCEPTED,
    "sending": DeliveryStatus.ACCEPTED,
    "sent": DeliveryStatus.ACCEPTED,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.UNDELIVERED,
}


def twilio_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """The X-Twilio-Signature of a POST of ``params`` to ``url``."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioStatusCallback:
    """Verifies and parses one status callback request."""

    def __init__(self, auth_token: str) -> None:
        if not auth_token:
            raise ValueError("an auth token is needed to verify Twilio's callbacks")
        self._token = auth_token

    def events(
        self, headers: Mapping[str, str], url: str, params: Sequence[tuple[str, str]]
    ) -> list[DeliveryEvent]:
        """The callback's event (none for a status commq does not track)."""
        self.verify(headers, url, params)
        # Verified over the parameters as sent; stored as text the database can hold.
        fields = {name: stored_text(value) for name, value in params}
        sid, status = fields.get("MessageSid", ""), fields.get("MessageStatus", "").lower()
        if not sid:
            raise ValueError("MessageSid is missing")
        code = fields.get("ErrorCode", "")
        suppress = SuppressionReason.STOP if code == TWILIO_STOP_CODE else None
        delivery = _STATUS.get(status)
        if delivery is None and suppress is None:
            return []
        event_id = event_key(f"{sid}:{status}:{code}")
        return [DeliveryEvent(PROVIDER, event_id, None, sid, delivery, suppress)]

    def verify(
        self, headers: Mapping[str, str], url: str, params: Sequence[tuple[str, str]]
    ) -> None:
        """Raise SignatureError unless Twilio signed this URL and these parameters."""
        given = headers.get(SIGNATURE_HEADER)
        if not given:
            raise SignatureError("the X-Twilio-Signature header is missing")
        expected = twilio_signature(self._token, url, params)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise SignatureError("the X-Twilio-Signature does not verify")
