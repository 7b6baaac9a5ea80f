"""The Twilio sender: Programmable Messaging over HTTPS, classified by the Twilio table."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

from commq.adapters.senders.classification import AMBIGUOUS, PERMANENT, http_keys, lookup
from commq.adapters.senders.classification.twilio import TWILIO
from commq.adapters.senders.http_exchange import (
    HttpFailure,
    HttpReply,
    endpoint,
    exchange,
    parse_retry_after,
    snippet,
)
from commq.adapters.storable_text import storable
from commq.domain.jobs import Job
from commq.domain.outcomes import Blame, SendOutcome, SendResult

DEFAULT_BASE_URL = "https://api.twilio.com"
_ERROR_CHARS = 500
_CODE_CHARS = 20
# A Messaging Service SID; anything else (a number, an alphanumeric sender id) is From.
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")


class TwilioSender:
    """Sends SMS jobs through Twilio's Messages API.

    A form-encoded POST with basic auth (account SID and auth token); ``To``
    is the job's recipient and ``Body`` its ``payload.body``. ``from_`` is a
    phone number (or alphanumeric sender id), or a Messaging Service SID
    (``MG`` + 32 hex digits) sent as
    ``MessagingServiceSid``. 201 is success and the message ``sid`` becomes
    the provider message id. Errors name Twilio's code ("Twilio 21610: ..."),
    which is also the result's ``error_code`` (21610 suppresses the number).
    With ``status_callback`` set, each message asks Twilio to report its
    delivery status to that URL. A client passed in stays the caller's to close.
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        status_callback: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs COMMQ_TWILIO_ACCOUNT_SID and COMMQ_TWILIO_AUTH_TOKEN")
        if not from_:
            raise ValueError("Twilio needs a sender (COMMQ_TWILIO_FROM): a number or an MG... SID")
        path = f"/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        self._url = endpoint(base_url, path)
        credentials = f"{account_sid}:{auth_token}".encode()
        self._authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
        sender_field = "MessagingServiceSid" if _SERVICE_SID.fullmatch(from_) else "From"
        self._fixed = {sender_field: from_}
        if status_callback:
            self._fixed["StatusCallback"] = status_callback
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    async def send(self, job: Job) -> SendResult:
        """POST the message and classify Twilio's answer."""
        body = job.payload.get("body")
        if not isinstance(body, str) or not body:
            error = "Twilio: SMS payload needs a non-empty string body"
            return SendResult(SendOutcome.PERMANENT, self.name, error=error)
        request = self._client.build_request(
            "POST",
            self._url,
            data={"To": job.recipient, **self._fixed, "Body": body},
            headers={
                "Authorization": self._authorization,
                "Accept": "application/json",
                "User-Agent": "commq/1",
            },
        )
        answer = await exchange(self._client, request, self._timeout)
        if isinstance(answer, HttpFailure):
            return self._lost(answer)
        return self._classify(answer)

    async def close(self) -> None:
        """Close the HTTP client, if this sender created it."""
        if self._owns_client:
            await self._client.aclose()

    def _classify(self, reply: HttpReply) -> SendResult:
        error_body = _error_body(reply.body)
        code = error_body.get("code")
        keys = [f"code:{code}", *http_keys(reply.status)] if code else http_keys(reply.status)
        default = AMBIGUOUS if reply.status >= 500 else PERMANENT
        verdict = lookup(TWILIO, keys, default)
        if verdict.outcome is SendOutcome.OK:
            return SendResult.ok(self.name, _sid(reply.body))
        return SendResult(
            verdict.outcome,
            self.name,
            error=storable(_error_text(reply, error_body)[:_ERROR_CHARS]),
            retry_after=_wait(reply, verdict.blame),
            blame=verdict.blame,
            error_code=storable(str(code))[:_CODE_CHARS] if code else None,
        )

    def _lost(self, failure: HttpFailure) -> SendResult:
        verdict = lookup(TWILIO, [failure.key], AMBIGUOUS)
        if failure.sent:
            error = (
                f"Twilio {failure.what} after the request was sent; "
                "Twilio may have created the message"
            )
        else:
            error = f"Twilio {failure.what} before the request was sent"
        return SendResult(verdict.outcome, self.name, error=error, blame=verdict.blame)


def _error_body(body: bytes) -> dict[str, Any]:
    """Twilio's error object (``code``, ``message``, ``more_info``, ``status``), or {}."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        # RecursionError: JSON nested deeper than the parser goes ("[[[[...").
        return {}
    return parsed if isinstance(parsed, dict) and "code" in parsed else {}


def _error_text(reply: HttpReply, error: dict[str, Any]) -> str:
    if not error:
        return f"Twilio HTTP {reply.status}: {snippet(reply.body) or 'no details'}"
    message = " ".join(str(error.get("message") or "").split())
    text = f"Twilio {error['code']}: {message} (HTTP {reply.status}"
    more = error.get("more_info")
    return text + (f", {more})" if isinstance(more, str) and more else ")")


def _sid(body: bytes) -> str | None:
    try:
        sid = json.loads(body).get("sid")
    except (ValueError, AttributeError, RecursionError):
        return None
    return sid[:255] if isinstance(sid, str) and sid else None


def _wait(reply: HttpReply, blame: Blame) -> timedelta | None:
    # Twilio documents no reset header for 20429; honour Retry-After when one comes.
    if blame is Blame.MESSAGE:
        return None
    return parse_retry_after(reply.headers.get("retry-after"))
