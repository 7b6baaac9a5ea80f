"""The webhook sender: a signed JSON POST to the job's URL, behind the SSRF guard."""

from __future__ import annotations

import json
import re
import ssl
import time

import httpx

from commq.adapters.senders.classification import PERMANENT, TRANSIENT, http_keys, lookup
from commq.adapters.senders.classification.webhook import WEBHOOK
from commq.adapters.senders.guarded_transport import GuardedTransport
from commq.adapters.senders.hostguard import HostGuard, RefusedAddressError, parse_target
from commq.adapters.senders.http_exchange import (
    HttpFailure,
    HttpReply,
    exchange,
    parse_retry_after,
    snippet,
)
from commq.adapters.senders.webhook_signing import WebhookSecrets, WebhookSigner
from commq.domain.jobs import Job
from commq.domain.outcomes import SendOutcome, SendResult

_LOCATION_CHARS = 200
# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones commq must own for the request to be
# what the job says: framing, the target host, the JSON type and the Standard Webhooks set.
_DROPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-type",
        "accept-encoding",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FORBIDDEN_IN_VALUE = re.compile(r"[^\t\x20-\x7e]")


class WebhookSender:
    """POSTs a webhook job's ``payload.body`` as JSON to its recipient URL.

    Every request carries ``webhook-id: <job id>``, the same on each retry, so
    receivers can drop duplicates; a business with a secret in ``secrets``
    also gets ``webhook-timestamp`` and ``webhook-signature`` (Standard
    Webhooks), and a business without one is sent unsigned. Every connection
    is opened to an address the guard checked at that moment (see
    ``GuardedTransport``). Redirects are never followed; the whole exchange is
    bounded by ``timeout`` seconds and 64 KiB of response body.
    ``ssl_context`` replaces the system's trusted CAs (tests use their own).
    """

    name = "webhook"

    def __init__(
        self,
        guard: HostGuard,
        timeout: float = 10.0,
        *,
        secrets: WebhookSecrets | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = timeout
        self._signer = WebhookSigner(secrets or {})
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(guard, ssl_context),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
        )

    async def send(self, job: Job) -> SendResult:
        """Check the URL, POST the signed body and classify the answer."""
        try:
            parse_target(job.recipient)
            headers, content = _request_parts(job)
        except RefusedAddressError as exc:
            return self._result(SendOutcome.PERMANENT, str(exc))
        except ValueError as exc:
            return self._result(SendOutcome.PERMANENT, f"webhook payload refused: {exc}")
        signed = self._signer.headers(job.business_id, job.id, int(time.time()), content)
        request = self._client.build_request(
            "POST", job.recipient, headers={**headers, **signed}, content=content
        )
        try:
            answer = await exchange(self._client, request, self._timeout, read_success_body=False)
        except RefusedAddressError as exc:
            return self._result(SendOutcome.PERMANENT, str(exc))
        if isinstance(answer, HttpFailure):
            return self._lost(answer)
        return self._classify(answer)

    async def close(self) -> None:
        """Close the HTTP client and its connections."""
        await self._client.aclose()

    def _classify(self, reply: HttpReply) -> SendResult:
        verdict = lookup(WEBHOOK, http_keys(reply.status), PERMANENT)
        if verdict.outcome is SendOutcome.OK:
            request_id = reply.headers.get("x-request-id")
            return SendResult.ok(self.name, request_id[:255] if request_id else None)
        if 300 <= reply.status < 400:
            location = reply.headers.get("location", "")[:_LOCATION_CHARS]
            error = f"HTTP {reply.status}: redirects are not followed (Location: {location})"
        else:
            text = snippet(reply.body)
            error = f"HTTP {reply.status}: {text}" if text else f"HTTP {reply.status}"
        wait = parse_retry_after(reply.headers.get("retry-after"))
        if verdict.outcome is not SendOutcome.TRANSIENT:
            wait = None
        return SendResult(verdict.outcome, self.name, error=error, retry_after=wait)

    def _lost(self, failure: HttpFailure) -> SendResult:
        verdict = lookup(WEBHOOK, [failure.key], TRANSIENT)
        if failure.sent:
            error = (
                f"webhook {failure.what} after the request was sent; "
                "the receiver may have acted on it"
            )
        else:
            error = f"webhook {failure.what} before the request was sent"
        return SendResult(verdict.outcome, self.name, error=error, blame=verdict.blame)

    def _result(self, outcome: SendOutcome, error: str) -> SendResult:
        return SendResult(outcome, self.name, error=error)


def _request_parts(job: Job) -> tuple[dict[str, str], bytes]:
    """Headers and JSON body of the request, or ValueError for a payload that cannot be sent."""
    try:
        content = json.dumps(job.payload.get("body"), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    headers = {"User-Agent": "commq-webhook/1"}
    custom = job.payload.get("headers") or {}
    if not isinstance(custom, dict):
        raise ValueError("headers must be an object of names to strings")
    for name, value in custom.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError("headers must be an object of names to strings")
        if not _TOKEN.fullmatch(name) or _FORBIDDEN_IN_VALUE.search(value):
            raise ValueError(f"header {name!r} has characters HTTP does not allow")
        if name.lower() not in _DROPPED_HEADERS:
            headers[name] = value
    # identity: the capped read stays a cap on bytes, not on compressed bytes.
    fixed = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
    return {**headers, **fixed, "webhook-id": job.id}, content.encode("utf-8")
