"""A monotonic clock a test moves by hand, for KeyService's verified-key cache."""

from __future__ import annotations


class ManualClock:
    """Returns ``now``; a test sets it to step past the cache's bound."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
