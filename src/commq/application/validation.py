"""Rules a job must meet before it is stored; each failure names its JSON field."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from commq.domain.errors import InvalidJobError
from commq.domain.jobs import Channel, NewJob

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_ATTEMPTS_LIMIT = 100
PRIORITY_LIMIT = 1000
#: The longest text each reference may be, by JSON field (the API schema's limits).
_TEXT_LIMITS = {"businessId": 200, "communicationId": 200, "idempotencyKey": 255}
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
#: A plain ASCII address, as most are. email-validator accepts every address this
#: matches that also passes _is_plain_email's length and name checks (a property test
#: pins it); it takes 20-28 us an address, this about 1, which a 1,000-job batch of
#: e-mails feels. Anything else still goes to email-validator.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,63}))"
)
#: Top-level names email-validator refuses (special-use, RFC 6761 and others).
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
# Built once: json.dumps with options builds an encoder per call, a third of the check.
_SIZING = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def validate_new_job(job: NewJob, prefix: str = "") -> None:
    """Raise InvalidJobError naming the field when ``job`` breaks a rule of DESIGN §2."""
    _check_references(job, prefix)
    _check_recipient(job.channel, job.recipient, f"{prefix}recipient")
    _check_payload(job.channel, job.payload, f"{prefix}payload")
    if not 1 <= job.max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise InvalidJobError(
            f"maxAttempts must be between 1 and {MAX_ATTEMPTS_LIMIT}", f"{prefix}maxAttempts"
        )


def _check_references(job: NewJob, prefix: str) -> None:
    # The API's schema refuses these first; the CLI and other callers rely on this check.
    texts = {
        "businessId": job.business_id,
        "communicationId": job.communication_id,
        "idempotencyKey": job.idempotency_key,
    }
    for field, text in texts.items():
        if text is not None and not 1 <= len(text) <= _TEXT_LIMITS[field]:
            limit = _TEXT_LIMITS[field]
            raise InvalidJobError(f"must be 1 to {limit} characters", f"{prefix}{field}")
    if not -PRIORITY_LIMIT <= job.priority <= PRIORITY_LIMIT:
        raise InvalidJobError(
            f"priority must be between {-PRIORITY_LIMIT} and {PRIORITY_LIMIT}", f"{prefix}priority"
        )


def _check_recipient(channel: Channel, recipient: str, field: str) -> None:
    if channel is Channel.EMAIL:
        if _is_plain_email(recipient):
            return
        try:
            validate_email(recipient, check_deliverability=False)
        except EmailNotValidError as exc:
            raise InvalidJobError(f"not a valid e-mail address: {exc}", field) from None
    elif channel is Channel.SMS:
        if not _E164.match(recipient):
            raise InvalidJobError("not an E.164 phone number such as +14155550100", field)
    elif not _is_http_url(recipient):
        raise InvalidJobError("a webhook recipient must be an http(s) URL", field)


def _is_plain_email(text: str) -> bool:
    """True for a plain ASCII address email-validator would accept; False: ask it."""
    plain = _PLAIN_EMAIL.fullmatch(text)
    if plain is None:
        return False
    domain, top = plain.groups()
    return (
        len(text) <= 254
        and len(text) - len(domain) - 1 <= 64
        and len(domain) <= 253
        # "ab--" labels are refused unless they are Punycode, which email-validator decodes.
        and "--" not in domain
        and top.lower() not in _SPECIAL_USE_TLDS
    )


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:  # an unclosed IPv6 bracket, a port out of range or not a number
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_payload(channel: Channel, payload: dict[str, Any], field: str) -> None:
    try:
        size = len(_SIZING.encode(payload).encode())
    except (ValueError, TypeError):
        raise InvalidJobError("payload must be plain JSON (no NaN or Infinity)", field) from None
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidJobError(f"payload is {size} bytes; the limit is 256 KiB", field)
    if channel is Channel.EMAIL:
        _require_strings(payload, field, ("subject",))
        if not isinstance(payload.get("text"), str) and not isinstance(payload.get("html"), str):
            raise InvalidJobError("an e-mail payload needs text or html", f"{field}.text")
    elif channel is Channel.SMS:
        _require_strings(payload, field, ("body",))
    elif "body" not in payload:
        raise InvalidJobError("a webhook payload needs a body", f"{field}.body")
    headers = payload.get("headers")
    if headers is not None and not _is_string_map(headers):
        raise InvalidJobError("headers must map names to strings", f"{field}.headers")


def _require_strings(payload: dict[str, Any], field: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = payload.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidJobError(f"{name} is required and must be a string", f"{field}.{name}")


def _is_string_map(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    return all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
