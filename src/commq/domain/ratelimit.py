"""Send rates per provider (``COMMQ_RATE_LIMITS``) and how they are read.

A limit of n sends per period is kept by giving every send its own time slot,
``period / n`` after the one before, across all workers. Evenly spaced slots
keep *every* window of one period at n sends or fewer (plus the one on its
edge), not only windows that start on a whole second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_UNITS = {"s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1)}
_LIMIT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*(\d+)\s*/\s*([smh])\s*$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` sends per ``per``."""

    count: int
    per: timedelta

    @property
    def interval(self) -> timedelta:
        """The spacing of two consecutive send slots."""
        return self.per / self.count

    def batch(self, window: timedelta) -> int:
        """How many slots one reservation may take: those of ``window``, at least one."""
        return max(1, int(window / self.interval))


def parse_rate_limits(text: str) -> dict[str, RateLimit]:
    """``sendgrid=100/s,twilio=10/m`` → {provider: RateLimit}; ValueError names a bad item."""
    limits: dict[str, RateLimit] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _LIMIT.match(item)
        if match is None:
            raise ValueError(f"{item!r} is not provider=N/s, N/m or N/h")
        provider, count, unit = match.groups()
        if int(count) < 1:
            raise ValueError(f"{item!r}: the count must be at least 1")
        limits[provider] = RateLimit(int(count), _UNITS[unit])
    return limits
