"""A fake Twilio Messages API that answers as Twilio documents.

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded,
  HTTP basic auth with the account SID and auth token: a wrong or missing
  login is 401 with code 20003; another account's path is 404 (20404).
- Missing ``To``, ``From``/``MessagingServiceSid`` or ``Body`` are 400 with
  codes 21604, 21603 and 21602; a ``To`` that is not E.164 is 400 21211.
- ``Ok()``: 201 and the message resource (``sid`` "SM" + 32 hex, ``status``
  "queued", ...); the form is added to ``accepted``.
- ``Fail(status, code)``: ``{"code", "message", "more_info", "status"}`` with
  that HTTP status (e.g. ``Fail(400, 21610)`` for a STOPped recipient,
  ``Fail(500)`` → 20500, ``Fail(503)`` → 20503).
- ``RateLimited(reset_in)``: 429 with code 20429 (and Retry-After, rounded up).

Source: research/providers.md §3.2.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from fakes.http import FakeProvider
from fakes.modes import Answer, Fail, Ok, RateLimited, Recorded

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service is unavailable. Please try again",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
    21635: "'To' number cannot be a landline",
}
_DEFAULT_CODES = {400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


def error(
    status: int, code: int, message: str | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """Twilio's error body."""
    document = {
        "code": code,
        "message": message or _MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Answer.json(status, document, **(headers or {}))


class FakeTwilio(FakeProvider):
    """See the module docstring."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-token") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        #: The form of every message answered 201, with its sid under "sid".
        self.accepted: list[dict[str, str]] = []

    @property
    def path(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def route(self, request: Recorded) -> Answer | None:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return error(401, 20003)
        if request.method != "POST" or request.path != self.path:
            return error(404, 20404)
        return _validate(request.form())

    def recipient_of(self, request: Recorded) -> str | None:
        return request.form().get("To")

    def render(self, mode: Ok | Fail | RateLimited, request: Recorded) -> Answer:
        if isinstance(mode, Ok):
            return self._created(request.form())
        if isinstance(mode, RateLimited):
            return error(429, 20429, headers={"Retry-After": str(math.ceil(mode.reset_in))})
        code = mode.code or _DEFAULT_CODES.get(mode.status, 20500)
        extra = {"Retry-After": mode.retry_after} if mode.retry_after else {}
        return error(mode.status, code, mode.message, extra)

    def _created(self, form: dict[str, str]) -> Answer:
        sid = "SM" + secrets.token_hex(16)
        self.accepted.append({**form, "sid": sid})
        now = format_datetime(datetime.now(UTC), usegmt=True)
        resource: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "price": None,
            "error_code": None,
            "error_message": None,
            "uri": f"{self.path.removesuffix('.json')}/{sid}.json",
        }
        return Answer.json(201, resource)


def _validate(form: dict[str, str]) -> Answer | None:
    if not form.get("To"):
        return error(400, 21604)
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return error(400, 21603)
    if not form.get("Body"):
        return error(400, 21602)
    if not _E164.fullmatch(form["To"]):
        return error(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
    return None
