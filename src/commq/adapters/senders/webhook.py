"""The webhook sender: a JSON POST to the job's URL, behind the SSRF guard."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from commq.adapters.senders.hostguard import HostGuard, IPAddress, RefusedAddressError
from commq.domain.jobs import Job
from commq.domain.outcomes import SendOutcome, SendResult

#: At most this much of a response body is read; the rest is never downloaded.
MAX_RESPONSE_BYTES = 64 * 1024
#: A receiver's Retry-After is honoured up to this long.
MAX_RETRY_AFTER = timedelta(days=1)
_ERROR_BODY_CHARS = 200
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones commq must own for the request to be
# what the job says: framing, the target host, the JSON type and the stable delivery id.
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
    }
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FORBIDDEN_IN_VALUE = re.compile(r"[^\t\x20-\x7e]")


@dataclass(slots=True)
class _Exchange:
    """What one delivery got to: whether the request left, and what came back."""

    sent: bool = False
    response: httpx.Response | None = None
    body: bytearray = field(default_factory=bytearray)

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        # httpcore reports each step; once the body is written the receiver may act on it.
        if event.endswith("send_request_body.complete"):
            self.sent = True


class WebhookSender:
    """POSTs a webhook job's ``payload.body`` as JSON to its recipient URL.

    Every request carries ``webhook-id: <job id>``, the same on each retry, so
    receivers can drop duplicates. Redirects are never followed; the whole
    exchange is bounded by ``timeout`` seconds and 64 KiB of response body.
    A client passed in stays the caller's to close.
    """

    name = "webhook"

    def __init__(
        self, guard: HostGuard, timeout: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self._guard = guard
        self._timeout = timeout
        self._owns_client = client is None
        # trust_env=False: proxy variables must not route requests around the guard.
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    async def send(self, job: Job) -> SendResult:
        """Check the URL, POST the body and classify the answer."""
        try:
            headers, content = _request_parts(job)
        except ValueError as exc:
            return self._result(SendOutcome.PERMANENT, f"webhook payload refused: {exc}")
        try:
            addresses = await self._guard.addresses(job.recipient)
        except RefusedAddressError as exc:
            return self._result(SendOutcome.PERMANENT, str(exc))
        except OSError as exc:
            return self._result(SendOutcome.TRANSIENT, f"webhook host did not resolve: {exc}")
        exchange = _Exchange()
        failure: Exception | None = None
        try:
            async with asyncio.timeout(self._timeout):
                await self._exchange(job.recipient, addresses, headers, content, exchange)
        except (TimeoutError, httpx.HTTPError) as exc:
            # With the status line in hand a slow body does not matter: classify by status.
            failure = exc
        if exchange.response is None:
            return self._lost(failure, exchange.sent)
        return self._classify(exchange.response, bytes(exchange.body))

    async def close(self) -> None:
        """Close the HTTP client, if this sender created it."""
        if self._owns_client:
            await self._client.aclose()

    async def _exchange(
        self,
        url: str,
        addresses: list[IPAddress],
        headers: dict[str, str],
        content: bytes,
        exchange: _Exchange,
    ) -> None:
        target = httpx.URL(url)
        # Only plain HTTP is pinned to an address (see _pinned), so only it has several to try.
        candidates = addresses if target.scheme == "http" else addresses[:1]
        for index, address in enumerate(candidates):
            request = self._client.build_request(
                "POST",
                _pinned(target, address),
                headers={**headers, "Host": target.netloc.decode("ascii")},
                content=content,
                extensions={"trace": exchange.trace},
            )
            try:
                response = await self._client.send(request, stream=True, follow_redirects=False)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # Nothing was sent, so the host's next address is safe to try.
                if index == len(candidates) - 1:
                    raise
                continue
            exchange.response = response
            try:
                if not response.is_success:
                    await _read_capped(response, exchange.body)
            finally:
                await response.aclose()
            return

    def _classify(self, response: httpx.Response, body: bytes) -> SendResult:
        status = response.status_code
        if response.is_success:
            request_id = response.headers.get("x-request-id")
            return SendResult.ok(self.name, request_id[:255] if request_id else None)
        if 300 <= status < 400:
            location = response.headers.get("location", "")[:_ERROR_BODY_CHARS]
            error = f"HTTP {status}: redirects are not followed (Location: {location})"
            return self._result(SendOutcome.PERMANENT, error)
        snippet = _snippet(body)
        error = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
        if status in _TRANSIENT_STATUSES or 500 <= status < 600:
            wait = parse_retry_after(response.headers.get("retry-after"))
            return SendResult(SendOutcome.TRANSIENT, self.name, error=error, retry_after=wait)
        return self._result(SendOutcome.PERMANENT, error)

    def _lost(self, exc: Exception | None, sent: bool) -> SendResult:
        if exc is None or isinstance(exc, TimeoutError | httpx.TimeoutException):
            what = "timed out"
        else:
            what = f"failed ({type(exc).__name__}: {exc})"
        if sent:
            error = f"webhook {what} after the request was sent; the receiver may have acted on it"
            return self._result(SendOutcome.AMBIGUOUS, error)
        return self._result(SendOutcome.TRANSIENT, f"webhook {what} before the request was sent")

    def _result(self, outcome: SendOutcome, error: str) -> SendResult:
        return SendResult(outcome, self.name, error=error)


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """A Retry-After header (delay-seconds or HTTP-date) as a delay, capped at one day."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        seconds = float(min(int(value), int(MAX_RETRY_AFTER.total_seconds())))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(timedelta(seconds=max(seconds, 0.0)), MAX_RETRY_AFTER)


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


def _pinned(url: httpx.URL, address: IPAddress) -> httpx.URL:
    """Plain HTTP goes to the address the guard checked, so DNS cannot change it meanwhile.

    HTTPS keeps the hostname: certificate verification already refuses a
    server that is not the named host, and the name is needed for SNI.
    """
    if url.scheme == "https":
        return url
    return url.copy_with(host=str(address))


async def _read_capped(response: httpx.Response, into: bytearray) -> None:
    async for chunk in response.aiter_raw():
        into.extend(chunk[: MAX_RESPONSE_BYTES - len(into)])
        if len(into) >= MAX_RESPONSE_BYTES:
            return


def _snippet(body: bytes) -> str:
    text = " ".join(body[: _ERROR_BODY_CHARS * 4].decode("utf-8", "replace").split())
    return text[:_ERROR_BODY_CHARS]
