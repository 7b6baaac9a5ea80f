"""The SendGrid sender: v3 Mail Send over HTTPS, answers classified by the SendGrid table."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx

from commq.adapters.senders.classification import OUTAGE, PERMANENT, http_keys, lookup
from commq.adapters.senders.classification.sendgrid import OWN_FROM_REFUSED, SENDGRID
from commq.adapters.senders.email_message import build_email, single_address
from commq.adapters.senders.http_exchange import (
    HttpFailure,
    HttpReply,
    endpoint,
    exchange,
    parse_reset_epoch,
    parse_retry_after,
    snippet,
)
from commq.adapters.storable_text import storable
from commq.domain.jobs import Job
from commq.domain.outcomes import Blame, SendOutcome, SendResult

DEFAULT_BASE_URL = "https://api.sendgrid.com"
#: The custom argument that carries the job id into SendGrid's Event Webhook.
JOB_ID_ARG = "commq_job_id"
_ERROR_CHARS = 500
_HINTS = {
    401: "check COMMQ_SENDGRID_API_KEY",
    403: "check the SendGrid account and that COMMQ_SENDGRID_API_KEY may use mail.send",
}
_DEFAULT_FROM_HINT = "check COMMQ_EMAIL_FROM: it must be a verified Sender Identity"
# What an HTTP header value can carry of a key (SendGrid's are "SG." and base64url).
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


class SendGridSender:
    """Sends email jobs through SendGrid's v3 Mail Send API.

    202 is success and ``X-Message-Id`` becomes the provider message id; the
    job id travels as the custom argument ``commq_job_id`` so delivery events
    map back. Everything else is classified by
    ``classification.sendgrid.SENDGRID``. A client passed in stays the
    caller's to close (and its own proxy and TLS settings apply).
    """

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        *,
        email_from: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        # A key read from a secret file often ends with a newline.
        api_key = api_key.strip()
        if not api_key:
            raise ValueError("SendGrid needs an API key (COMMQ_SENDGRID_API_KEY)")
        if not _HEADER_SAFE.fullmatch(api_key):
            # Never quoted: the HTTP client's own refusal would put the key in lastError.
            raise ValueError("COMMQ_SENDGRID_API_KEY has characters an HTTP header cannot carry")
        self._from_address = single_address("sender address", email_from).addr_spec
        self._email_from = email_from
        self._url = endpoint(base_url, "/v3/mail/send")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": "commq/1",
        }
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    async def send(self, job: Job) -> SendResult:
        """POST the message and classify SendGrid's answer."""
        try:
            body = mail_send_body(job, self._email_from)
        except ValueError as exc:
            return SendResult(SendOutcome.PERMANENT, self.name, error=f"SendGrid: {exc}")
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        request = self._client.build_request(
            "POST",
            self._url,
            content=content,
            headers={**self._headers, "Content-Type": "application/json"},
        )
        answer = await exchange(self._client, request, self._timeout)
        if isinstance(answer, HttpFailure):
            return self._lost(answer)
        return self._classify(answer, job)

    async def close(self) -> None:
        """Close the HTTP client, if this sender created it."""
        if self._owns_client:
            await self._client.aclose()

    def _classify(self, reply: HttpReply, job: Job) -> SendResult:
        verdict = lookup(SENDGRID, http_keys(reply.status), PERMANENT)
        if verdict.outcome is SendOutcome.OK:
            message_id = reply.headers.get("x-message-id")
            return SendResult.ok(self.name, message_id[:255] if message_id else None)
        return self._refused(reply, job)

    def _refused(self, reply: HttpReply, job: Job) -> SendResult:
        errors = _errors(reply.body)
        keys, hint = self._refusal(reply.status, errors, job)
        verdict = lookup(SENDGRID, keys, PERMANENT)
        suffix = f" ({hint})" if hint else ""
        # SendGrid's text is cut, never the hint: it names what to fix.
        text = f"SendGrid {reply.status}: {_error_text(errors, reply.body)}"
        return SendResult(
            verdict.outcome,
            self.name,
            error=storable(text[: _ERROR_CHARS - len(suffix)] + suffix),
            retry_after=_wait(reply, verdict.blame),
            blame=verdict.blame,
        )

    def _refusal(
        self, status: int, errors: list[dict[str, Any]], job: Job
    ) -> tuple[list[str], str | None]:
        """The table keys of a refusal and the hint for lastError.

        A 403 is read by its body, not its status alone: when every error names
        the ``from`` field, the refused address is the one to blame. If the job
        chose it, only jobs with that address fail; if it is COMMQ_EMAIL_FROM,
        every job would.
        """
        keys = list(http_keys(status))
        if status != 403 or not _all_about_from(errors):
            return keys, _HINTS.get(status)
        own = self._own_from(job)
        if own is None:
            return keys, _DEFAULT_FROM_HINT
        hint = f"the job's from address {own} is not a verified Sender Identity in SendGrid"
        return [OWN_FROM_REFUSED, *keys], hint

    def _own_from(self, job: Job) -> str | None:
        """The job's own from address when it is not the configured one, else None."""
        chosen = job.payload.get("from")
        if not chosen or not isinstance(chosen, str):
            return None
        try:
            address = single_address("from", chosen).addr_spec
        except ValueError:
            return None  # mail_send_body refused it already; never sent
        return None if address.lower() == self._from_address.lower() else address

    def _lost(self, failure: HttpFailure) -> SendResult:
        verdict = lookup(SENDGRID, [failure.key], OUTAGE)
        when = "after the request was sent" if failure.sent else "before the request was sent"
        error = f"SendGrid {failure.what} {when}"
        if failure.sent:
            error += "; SendGrid may have queued the message"
        return SendResult(verdict.outcome, self.name, error=error, blame=verdict.blame)


def mail_send_body(job: Job, default_from: str) -> dict[str, Any]:
    """The v3 Mail Send JSON of an email job, or ValueError for a payload that cannot be sent.

    The payload is first checked by the same rules as the SMTP path
    (``build_email``), so both providers refuse exactly the same jobs.
    """
    build_email(job, default_from)
    payload = job.payload
    body: dict[str, Any] = {
        "personalizations": [{"to": [_address("recipient", job.recipient)]}],
        "from": _address("from", payload.get("from") or default_from),
        "content": _content(payload.get("text"), payload.get("html")),
        "custom_args": {JOB_ID_ARG: job.id},
    }
    if payload.get("subject"):
        # Left out when empty: SendGrid then answers 400 "The subject is required".
        body["subject"] = payload["subject"]
    if payload.get("replyTo"):
        body["reply_to"] = _address("replyTo", payload["replyTo"])
    if payload.get("headers"):
        body["headers"] = dict(payload["headers"])
    return body


def _address(field: str, value: str) -> dict[str, str]:
    address = single_address(field, value)
    spelled = {"email": address.addr_spec}
    if address.display_name:
        spelled["name"] = address.display_name
    return spelled


def _content(text: str | None, html: str | None) -> list[dict[str, str]]:
    # SendGrid requires text/plain before text/html.
    parts = [("text/plain", text), ("text/html", html)]
    return [{"type": kind, "value": value} for kind, value in parts if value is not None]


def _errors(body: bytes) -> list[dict[str, Any]]:
    """The objects of SendGrid's ``errors`` array; empty when the body is anything else."""
    try:
        errors = json.loads(body)["errors"]
    except (ValueError, KeyError, TypeError, RecursionError):
        # RecursionError: JSON nested deeper than the parser goes ("[[[[...").
        return []
    if not isinstance(errors, list):
        return []
    return [error for error in errors if isinstance(error, dict)]


def _all_about_from(errors: list[dict[str, Any]]) -> bool:
    """Whether there are errors and every one names the from field (``from``, ``from.email``).

    One error about anything else (the key, the account) makes it the provider's problem.
    """
    fields = [error.get("field") for error in errors]
    return bool(fields) and all(
        isinstance(field, str) and field.split(".", 1)[0] == "from" for field in fields
    )


def _error_text(errors: list[dict[str, Any]], body: bytes) -> str:
    """SendGrid's ``errors`` messages ("message (field x)"), or the start of the body."""
    texts = [_one_error(error) for error in errors]
    return "; ".join(text for text in texts if text) or snippet(body) or "no details"


def _one_error(error: dict[str, Any]) -> str:
    message = " ".join(str(error.get("message") or "").split())
    field = error.get("field")
    return f"{message} (field {field})" if field else message


def _wait(reply: HttpReply, blame: Blame) -> timedelta | None:
    """How long SendGrid asked us to wait: its rate-limit reset on 429, else Retry-After."""
    if blame is Blame.RATE_LIMIT:
        reset = parse_reset_epoch(reply.headers.get("x-ratelimit-reset"))
        if reset is not None:
            return reset
    return parse_retry_after(reply.headers.get("retry-after"))
