"""One HTTP request to a provider or a receiver: bounded in time and size, never followed.

Shared by the SendGrid, Twilio and webhook senders. The answer is either an
``HttpReply`` (a status line came back) or an ``HttpFailure`` that knows
whether the request had completely left us, which is the line between "safe
to retry" and "the peer may have acted on it".
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from commq.adapters.senders.classification import NO_ANSWER, NOT_SENT
from commq.adapters.storable_text import storable

#: At most this much of a response body is read; the rest is never downloaded.
MAX_RESPONSE_BYTES = 64 * 1024
#: A peer's Retry-After (or rate-limit reset) is honoured up to this long.
MAX_RETRY_AFTER = timedelta(days=1)
_SNIPPET_CHARS = 200


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A status line came back; ``body`` holds at most MAX_RESPONSE_BYTES of the body."""

    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class HttpFailure:
    """No status line: the connection failed, broke or timed out."""

    #: The whole request had been written: the peer may have acted on it.
    sent: bool
    #: "timed out" or "failed (ConnectError: ...)".
    what: str

    @property
    def key(self) -> str:
        """The classification key of this failure (NOT_SENT or NO_ANSWER)."""
        return NO_ANSWER if self.sent else NOT_SENT


@dataclass(slots=True)
class _Progress:
    sent: bool = False
    response: httpx.Response | None = None
    body: bytearray = field(default_factory=bytearray)

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        # httpcore reports each step; once the body is written the peer may act on it.
        if event.endswith("send_request_body.complete"):
            self.sent = True


async def exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    timeout: float,
    *,
    read_success_body: bool = True,
) -> HttpReply | HttpFailure:
    """Send ``request`` and read the answer, all within ``timeout`` seconds.

    The deadline covers connecting, writing, the status line and the capped
    body read, so a peer that drips one byte at a time cannot hold a worker
    longer. Redirects are never followed. Exceptions other than timeouts and
    httpx transport errors (e.g. the SSRF guard's refusal) propagate.
    """
    progress = _Progress()
    request.extensions = {**request.extensions, "trace": progress.trace}
    failure: Exception | None = None
    try:
        async with asyncio.timeout(timeout):
            await _run(client, request, progress, read_success_body)
    except (TimeoutError, httpx.HTTPError) as exc:
        # With the status line in hand a slow or broken body does not matter.
        failure = exc
    if progress.response is None:
        return HttpFailure(progress.sent, _describe(failure))
    response = progress.response
    return HttpReply(response.status_code, response.headers, bytes(progress.body))


async def _run(
    client: httpx.AsyncClient, request: httpx.Request, progress: _Progress, read_success: bool
) -> None:
    response = await client.send(request, stream=True, follow_redirects=False)
    progress.response = response
    try:
        if read_success or not response.is_success:
            async for chunk in response.aiter_raw():
                progress.body.extend(chunk[: MAX_RESPONSE_BYTES - len(progress.body)])
                if len(progress.body) >= MAX_RESPONSE_BYTES:
                    return
    finally:
        await response.aclose()


def _describe(exc: Exception | None) -> str:
    if exc is None or isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    return f"failed ({type(exc).__name__}: {exc})"


def snippet(body: bytes, limit: int = _SNIPPET_CHARS) -> str:
    """The start of a body as one line of text, for an error message."""
    text = " ".join(storable(body[: limit * 4].decode("utf-8", "replace")).split())
    return text[:limit]


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """A Retry-After header (delay-seconds or HTTP-date) as a delay, capped at one day."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        # float(), not int(): int() refuses more than 4,300 digits; float() says inf.
        seconds = min(float(value), MAX_RETRY_AFTER.total_seconds())
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            # OverflowError: a zone offset of billions of hours ("... 0:0 2200000000").
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(timedelta(seconds=max(seconds, 0.0)), MAX_RETRY_AFTER)


def parse_reset_epoch(value: str | None, now: datetime | None = None) -> timedelta | None:
    """An ``X-RateLimit-Reset`` header (epoch seconds) as the delay until then, capped."""
    if not value or not re.fullmatch(r"[0-9]{1,12}(\.[0-9]+)?", value.strip()):
        return None
    # Seconds, not a datetime: an absurd reset (year 33658) is beyond what one can hold.
    seconds = float(value) - (now or datetime.now(UTC)).timestamp()
    return timedelta(seconds=min(max(seconds, 0.0), MAX_RETRY_AFTER.total_seconds()))


def endpoint(base_url: str, path: str) -> str:
    """``base_url`` (http or https, any path prefix kept) joined with an API ``path``.

    Raises ValueError for anything that is not an http(s) URL with a host.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL must be http(s)://host[:port], not {base_url!r}")
    return base_url.rstrip("/") + path
