"""A fake SendGrid v3 Mail Send API that answers as SendGrid documents.

- ``POST /v3/mail/send`` with ``Authorization: Bearer <api_key>``; anything
  else on the path is 404, a wrong key 401 ("The provided authorization grant
  is invalid, expired, or revoked").
- The body is checked as SendGrid does: personalizations (1..1000, each with
  ``to``), ``from.email``, a subject (top level or in every personalization),
  ``content`` with text/plain before text/html; violations are 400 with
  ``{"errors": [{"message", "field", "help"}]}``.
- ``Ok()``: 202, empty body, ``X-Message-Id``; the message is added to ``accepted``.
- ``Fail(status)``: that status with an ``errors`` body (401/403/400/413/5xx).
- ``RateLimited(reset_in)``: 429, ``{"errors":[{"field":null,"message":"too many
  requests"}]}``, ``X-RateLimit-Reset`` = now + reset_in (epoch seconds).
- ``verify_senders(*addresses)``: from then on only those from addresses are
  verified Sender Identities; a message from any other is 403 with
  ``{"errors":[{"message":"The from address does not match a verified Sender
  Identity. ...","field":"from","help":null}]}``, as SendGrid answers it.
- ``limit(count, per)``: enforce a real limit: past ``count`` requests in a
  window of ``per`` seconds, 429 until the window ends. Every answer carries
  ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset``, as SendGrid's do.

Source: research/providers.md §3.1.
"""

from __future__ import annotations

import math
import secrets
import string
import threading
import time
from typing import Any

from fakes.http import FakeProvider
from fakes.modes import Answer, Fail, Ok, RateLimited, Recorded

PATH = "/v3/mail/send"
_MESSAGES = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: (
        "The from address does not match a verified Sender Identity. Mail cannot be sent "
        "until this error is resolved."
    ),
    413: "The JSON payload you have included in your request is too large.",
    500: "An internal server error occurred.",
    503: "Service Unavailable",
}
_IDENTITY_HELP = (
    " Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see "
    "the Sender Identity requirements"
)
_ID_ALPHABET = string.ascii_letters + string.digits + "-_"


def _errors(status: int, message: str, field: str | None = None, **headers: str) -> Answer:
    document = {"errors": [{"message": message, "field": field, "help": None}]}
    return Answer.json(status, document, **headers)


class FakeSendGrid(FakeProvider):
    """See the module docstring."""

    def __init__(self, api_key: str = "SG.test-key") -> None:
        super().__init__()
        self.api_key = api_key
        #: (X-Message-Id, request body) of every message answered 202.
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self._limit: tuple[int, float] | None = None
        self._verified: frozenset[str] | None = None
        self._window = (0.0, 0)  # (start, count)
        self._window_lock = threading.Lock()

    def limit(self, count: int, per: float = 1.0) -> None:
        """Answer 429 past ``count`` requests in each ``per``-second window."""
        self._limit = (count, per)

    def verify_senders(self, *addresses: str) -> None:
        """Accept mail only from these addresses (any other from: 403, field ``from``)."""
        self._verified = frozenset(address.lower() for address in addresses)

    def route(self, request: Recorded) -> Answer | None:
        if request.method != "POST" or request.path != PATH:
            return _errors(404, "Not Found")
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _errors(401, _MESSAGES[401])
        limited = self._over_limit(request)
        if limited is not None:
            return limited
        try:
            body = request.json()
        except ValueError:
            return _errors(400, "Bad Request", None)
        return _validate(body) or self._unverified(body)

    def _unverified(self, body: dict[str, Any]) -> Answer | None:
        sender = str(body["from"]["email"]).lower()
        if self._verified is None or sender in self._verified:
            return None
        return _errors(403, _MESSAGES[403] + _IDENTITY_HELP, "from")

    def recipient_of(self, request: Recorded) -> str | None:
        try:
            return str(request.json()["personalizations"][0]["to"][0]["email"])
        except (ValueError, LookupError, TypeError):
            return None

    def render(self, mode: Ok | Fail | RateLimited, request: Recorded) -> Answer:
        headers = self._limit_headers()
        if isinstance(mode, Ok):
            message_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))
            self.accepted.append((message_id, request.json()))
            return Answer(202, b"", {"X-Message-Id": message_id, **headers})
        if isinstance(mode, RateLimited):
            reset = str(math.ceil(time.time() + mode.reset_in))
            return _errors(429, "too many requests", **{**headers, "X-RateLimit-Reset": reset})
        extra = {"Retry-After": mode.retry_after} if mode.retry_after else {}
        message = mode.message or _MESSAGES.get(mode.status, "error")
        return _errors(mode.status, message, mode.field, **headers, **extra)

    def _over_limit(self, request: Recorded) -> Answer | None:
        if self._limit is None:
            return None
        count, per = self._limit
        with self._window_lock:
            start, seen = self._window
            if request.at - start >= per:
                start, seen = request.at, 0
            self._window = (start, seen + 1)
        if seen < count:
            return None
        reset = str(math.ceil(start + per))
        headers = {**self._limit_headers(), "X-RateLimit-Reset": reset}
        return _errors(429, "too many requests", **headers)

    def _limit_headers(self) -> dict[str, str]:
        if self._limit is None:
            return {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "599",
                "X-RateLimit-Reset": str(math.ceil(time.time() + 60)),
            }
        count, per = self._limit
        start, seen = self._window
        return {
            "X-RateLimit-Limit": str(count),
            "X-RateLimit-Remaining": str(max(count - seen, 0)),
            "X-RateLimit-Reset": str(math.ceil(start + per)),
        }


def _validate(body: Any) -> Answer | None:
    """SendGrid's own checks of a Mail Send body, as its error messages word them."""
    if not isinstance(body, dict):
        return _errors(400, "Bad Request")
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return _errors(400, "The personalizations field is required.", "personalizations")
    if len(personalizations) > 1000:
        return _errors(
            400, "The personalizations field must have at most 1000 items.", "personalizations"
        )
    if not all(isinstance(p, dict) and p.get("to") for p in personalizations):
        return _errors(
            400,
            "The to array is required for all personalization objects.",
            "personalizations.0.to",
        )
    if not isinstance(body.get("from"), dict) or not body["from"].get("email"):
        return _errors(400, "The from object must be provided for every email send.", "from")
    if not body.get("subject") and not all(p.get("subject") for p in personalizations):
        return _errors(
            400,
            "The subject is required. You can get around this requirement if "
            "you use a template with a subject defined or if every personalization "
            "has a subject defined.",
            "subject",
        )
    return _validate_content(body.get("content"))


def _validate_content(content: Any) -> Answer | None:
    if not isinstance(content, list) or not content:
        return _errors(
            400,
            "Unless a valid template_id is provided, the content parameter is required.",
            "content",
        )
    types = [part.get("type") for part in content if isinstance(part, dict)]
    if "text/plain" in types and types.index("text/plain") != 0:
        return _errors(
            400,
            "If present, text/plain content must be first, followed by any other content.",
            "content",
        )
    if any(not isinstance(part, dict) or not part.get("value") for part in content):
        return _errors(
            400,
            "The content value must be a string at least one character in length.",
            "content.0.value",
        )
    return None
