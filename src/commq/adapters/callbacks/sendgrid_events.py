"""SendGrid's signed Event Webhook.

Verification (twilio.com/docs/sendgrid/for-developers/tracking-events/
getting-started-event-webhook-security-features): ECDSA P-256 with SHA-256
over the ``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw
body; the signature (``X-Twilio-Email-Event-Webhook-Signature``) and the
public key (``COMMQ_SENDGRID_WEBHOOK_PUBLIC_KEY``) are base64 of DER.

No replay window is applied (SendGrid documents none, and redelivers for up
to 24 hours): a replayed batch is harmless because every event is applied at
most once, by its ``sg_event_id``.

Events (…/tracking-events/event): a JSON array; custom arguments such as
``commq_job_id`` appear as top-level fields; ``sg_message_id`` is the
``X-Message-Id`` of the send followed by a dot and a suffix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from commq.adapters.callbacks.identifiers import event_key, stored_text
from commq.adapters.callbacks.signatures import SignatureError
from commq.domain.delivery import DeliveryEvent
from commq.domain.jobs import DeliveryStatus
from commq.domain.suppression import SuppressionReason

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
#: The custom argument the SendGrid sender puts on every message.
JOB_ID_ARG = "commq_job_id"
#: A job id (a UUID) is 36 characters.
JOB_ID_LENGTH = 36

#: Event → deliveryStatus ("deferred", "open", "click" … change none).
_STATUS = {
    "processed": DeliveryStatus.ACCEPTED,
    "delivered": DeliveryStatus.DELIVERED,
    "bounce": DeliveryStatus.BOUNCED,
    "dropped": DeliveryStatus.DROPPED,
}
#: A drop because SendGrid's own lists hold the address means ours should too.
_DROP_REASONS = {
    "bounced address": SuppressionReason.HARD_BOUNCE,
    "spam reporting address": SuppressionReason.SPAM_REPORT,
}


class SendGridEventWebhook:
    """Verifies and parses one Event Webhook request."""

    def __init__(self, public_key: str) -> None:
        self._key = _load_key(public_key)

    def events(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]:
        """The batch's events; SignatureError unless SendGrid signed exactly this body."""
        self.verify(headers, body)
        try:
            batch = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json's stack
            raise ValueError("the body is not JSON") from None
        if not isinstance(batch, list):
            raise ValueError("the body is not a JSON array of events")
        return [event for item in batch if (event := _event(item)) is not None]

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise SignatureError unless the headers sign ``body``."""
        signature, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise SignatureError("the SendGrid signature headers are missing")
        try:
            der = base64.b64decode(signature, validate=True)
            self._key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureError("the SendGrid signature does not verify") from None


def _load_key(public_key: str) -> ec.EllipticCurvePublicKey:
    text = public_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise ValueError("not a base64 DER (or PEM) public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an ECDSA public key")
    return key


def _event(item: Any) -> DeliveryEvent | None:
    if not isinstance(item, dict):
        return None
    kind = str(item.get("event", ""))
    status = _STATUS.get(kind)
    suppress = _suppression(kind, item)
    if status is None and suppress is None:
        return None
    job_id = stored_text(item.get(JOB_ID_ARG))
    message_id = stored_text(item.get("sg_message_id")).split(".", 1)[0]
    return DeliveryEvent(
        provider=PROVIDER,
        event_id=event_key(stored_text(item.get("sg_event_id"))) or _fallback_id(item),
        # Longer than a job id: not an id commq put on a message, so no job of ours.
        job_id=job_id if 0 < len(job_id) <= JOB_ID_LENGTH else None,
        provider_message_id=message_id or None,
        status=status,
        suppress=suppress,
    )


def _suppression(kind: str, item: dict[str, Any]) -> SuppressionReason | None:
    if kind == "spamreport":
        return SuppressionReason.SPAM_REPORT
    if kind == "bounce" and str(item.get("type", "bounce")) == "bounce":
        return SuppressionReason.HARD_BOUNCE  # "blocked" bounces are not about the address
    if kind == "dropped":
        return _DROP_REASONS.get(str(item.get("reason", "")).strip().lower())
    return None


def _fallback_id(item: dict[str, Any]) -> str:
    # Events without an sg_event_id are deduplicated by their content.
    raw = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
