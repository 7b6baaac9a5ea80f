"""Build the RFC 5322 message of an email job, shared by the outbox and SMTP senders.

Everything a caller controls is checked here, so a bad payload is refused (as a
``ValueError``, which senders report as a permanent error) before anything is
written or sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from commq.domain.jobs import Job

#: SMTP line endings; 7-bit transfer encodings so no server needs 8BITMIME.
MESSAGE_POLICY = policy.SMTP.clone(cte_type="7bit")

#: Headers commq writes itself, or that would change who receives the message.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "sender",
        "return-path",
        "mime-version",
    }
)


@dataclass(frozen=True, slots=True)
class EmailEnvelope:
    """A built message and the SMTP envelope it travels in."""

    message: EmailMessage
    #: MAIL FROM: the bare address of the From header.
    sender: str
    #: RCPT TO: the job's recipient, bare.
    recipient: str
    message_id: str


def message_id_for(job: Job) -> str:
    """The job's Message-ID: the same on every attempt, so receivers can drop duplicates."""
    return f"<{job.id}@commq>"


def build_email(job: Job, default_from: str, now: datetime | None = None) -> EmailEnvelope:
    """The message and envelope of an email job.

    Raises ValueError naming the problem when the payload cannot make a safe
    message (bad address, CR/LF in a header, a reserved extra header, no body).
    """
    payload = job.payload
    sender = single_address("from", _text(payload, "from") or default_from)
    recipient = single_address("recipient", job.recipient)
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = _header_value("subject", _text(payload, "subject") or "")
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = message_id_for(job)
    reply_to = _text(payload, "replyTo")
    if reply_to:
        message["Reply-To"] = single_address("replyTo", reply_to)
    for name, value in _extra_headers(payload.get("headers")):
        message[name] = value
    _set_body(message, _text(payload, "text"), _text(payload, "html"))
    return EmailEnvelope(message, sender.addr_spec, recipient.addr_spec, message_id_for(job))


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"email payload field {key!r} must be a string")


def _header_value(field: str, value: str) -> str:
    # The email package refuses CR/LF too, but with a message that names no field.
    if "\r" in value or "\n" in value:
        raise ValueError(f"email {field} must not contain line breaks")
    return value


def single_address(field: str, value: str) -> Address:
    """``value`` as exactly one address (``Name <a@b>`` or ``a@b``), or ValueError."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        # Control characters would otherwise reach the SMTP command line (MAIL FROM, RCPT TO).
        raise ValueError(f"email {field} must not contain control characters or line breaks")
    header = MESSAGE_POLICY.header_factory("To", value)
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if len(addresses) != 1 or header.defects:
        raise ValueError(f"email {field} is not one valid address: {value!r}")
    address: Address = addresses[0]
    if not address.username or not address.domain:
        raise ValueError(f"email {field} is not one valid address: {value!r}")
    if not address.username.isascii():
        # That would need SMTPUTF8 end to end, which commq does not negotiate.
        raise ValueError(f"email {field} has a non-ASCII local part: {value!r}")
    return Address(address.display_name, address.username, _ascii_domain(field, address.domain))


def _ascii_domain(field: str, domain: str) -> str:
    # Internationalised domains travel as IDNA (punycode) in headers and SMTP commands.
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"email {field} has a domain that is not valid: {domain!r}") from exc


def _extra_headers(headers: object) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if not isinstance(headers, Mapping):
        raise ValueError("email headers must be an object of names to strings")
    return [_extra_header(name, value) for name, value in headers.items()]


def _extra_header(name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or not isinstance(value, str):
        raise ValueError("email headers must be an object of names to strings")
    # RFC 5322 field names are printable ASCII without ":"; this also refuses CR/LF.
    if not name or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
        raise ValueError(f"email header name {name!r} is not valid")
    lowered = name.lower()
    if lowered in _RESERVED_HEADERS or lowered.startswith("content-"):
        raise ValueError(f"email header {name!r} is set by commq and cannot be overridden")
    return name, _header_value(f"header {name!r}", value)


def _set_body(message: EmailMessage, text: str | None, html: str | None) -> None:
    if text is None and html is None:
        raise ValueError("email payload needs text or html")
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
