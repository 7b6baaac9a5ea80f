"""Retry timing: exponential backoff with full jitter, capped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for attempt n is uniform in [0, min(cap, base * 2**(n-1))].

    Full jitter spreads a crowd of failed jobs over the whole window, so a
    recovering provider is not hit by a synchronised wave. A provider's own
    Retry-After wins when it asks for longer.
    """

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(seconds=3600)

    def ceiling(self, attempt: int) -> timedelta:
        """The largest delay after ``attempt`` (1-based) failed attempts."""
        exponent = min(max(attempt, 1) - 1, 62)
        base_s = self.base.total_seconds()
        cap_s = self.cap.total_seconds()
        return timedelta(seconds=min(cap_s, base_s * float(2**exponent)))

    def backoff(
        self, attempt: int, jitter: float, retry_after: timedelta | None = None
    ) -> timedelta:
        """The delay before the next attempt; ``jitter`` is a number in [0, 1)."""
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        delay = self.ceiling(attempt) * jitter
        if retry_after is not None and retry_after > delay:
            return retry_after
        return delay
