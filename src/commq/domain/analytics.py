"""Time series from rollups: buckets, the history query, and sliding windows.

Rollups hold sums per bucket (minute, hour, day, in UTC); every figure here is
derived from those sums, so it needs no job row and survives pruning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from commq.domain.errors import InvalidJobError

#: Most buckets one history answer may hold (per group).
MAX_BUCKETS = 10_000

MINUTE = timedelta(minutes=1)


class Bucket(StrEnum):
    """The width of one point of a time series."""

    #: One minute.
    MINUTE = "minute"
    #: One hour.
    HOUR = "hour"
    #: One UTC day.
    DAY = "day"

    @property
    def width(self) -> timedelta:
        """How long one bucket lasts."""
        return {"minute": MINUTE, "hour": timedelta(hours=1), "day": timedelta(days=1)}[self]


class GroupBy(StrEnum):
    """What a history splits its series by."""

    #: One series per channel.
    CHANNEL = "channel"
    #: One per provider of the attempt (null: jobs never attempted).
    PROVIDER = "provider"
    #: One per error type (null: enqueued and completed jobs, successful attempts).
    ERROR_TYPE = "errorType"


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """GET /stats/history: buckets from the one holding ``start`` up to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    bucket: Bucket
    group_by: GroupBy | None = None
    #: None: every business (platform keys only).
    business_id: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidJobError("from and to must carry a time zone", "from")
        if self.start >= self.end:
            raise InvalidJobError("from must be before to", "from")
        if bucket_count(self.start, self.end, self.bucket) > MAX_BUCKETS:
            raise InvalidJobError(
                f"from..to spans more than {MAX_BUCKETS} {self.bucket.value} buckets;"
                " use a wider bucket or a shorter range",
                "to",
            )


@dataclass(frozen=True, slots=True)
class Figures:
    """Rollup sums over some buckets (and, for a series, one group)."""

    enqueued: float = 0
    completed: float = 0
    failed: float = 0
    succeeded_attempts: float = 0
    failed_attempts: float = 0
    #: Summed durations of the successful attempts.
    duration_ms: float = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))

    def scaled(self, weight: float) -> Figures:
        """Every sum times ``weight`` (the share of a bucket inside a window)."""
        return Figures(*(value * weight for value in _values(self)))

    @property
    def avg_processing_time_seconds(self) -> float | None:
        """Mean duration of the successful attempts; None when there were none."""
        if self.succeeded_attempts <= 0:
            return None
        return self.duration_ms / self.succeeded_attempts / 1000

    @property
    def failure_rate(self) -> float | None:
        """Failed attempts / finished attempts; None when none finished."""
        finished = self.succeeded_attempts + self.failed_attempts
        return None if finished <= 0 else self.failed_attempts / finished


def _values(figures: Figures) -> tuple[float, ...]:
    f = figures
    return (
        f.enqueued,
        f.completed,
        f.failed,
        f.succeeded_attempts,
        f.failed_attempts,
        f.duration_ms,
    )


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One bucket of one series."""

    at: datetime
    figures: Figures


@dataclass(frozen=True, slots=True)
class HistorySeries:
    """The points of one group (``group`` None: no grouping, or the "none" group)."""

    group: str | None
    points: list[HistoryPoint] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class History:
    """A history answer: one dense series per group, every bucket present."""

    query: HistoryQuery
    series: list[HistorySeries]


#: Rollup sums by (group, bucket start); group None when ungrouped or absent.
RollupSums = Mapping[tuple[str | None, datetime], Figures]


def bucket_floor(at: datetime, bucket: Bucket) -> datetime:
    """The start of the UTC bucket holding ``at``."""
    at = at.astimezone(UTC)
    if bucket is Bucket.DAY:
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket is Bucket.HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(second=0, microsecond=0)


def bucket_count(start: datetime, end: datetime, bucket: Bucket) -> int:
    """How many buckets run from the one holding ``start`` until ``end``."""
    return max(0, math.ceil((end - bucket_floor(start, bucket)) / bucket.width))


def bucket_starts(start: datetime, end: datetime, bucket: Bucket) -> list[datetime]:
    """Starts of the buckets from the one holding ``start`` until ``end`` (exclusive)."""
    first = bucket_floor(start, bucket)
    return [first + bucket.width * i for i in range(bucket_count(start, end, bucket))]


def build_history(query: HistoryQuery, sums: RollupSums) -> History:
    """Dense series: every bucket of the range, zero where the rollups hold nothing."""
    starts = bucket_starts(query.start, query.end, query.bucket)
    groups: list[str | None] = [None]
    if query.group_by is not None:
        # The "none" group (jobs never attempted, successes' error type) sorts first.
        groups = sorted({group for group, _ in sums}, key=lambda g: (g is not None, g or ""))
    series = [
        HistorySeries(group, [HistoryPoint(at, sums.get((group, at), Figures())) for at in starts])
        for group in groups
    ]
    return History(query, series)


def window_sum(minutes: Mapping[datetime, Figures], now: datetime, window: timedelta) -> Figures:
    """The figures of the last ``window`` (whole minutes), estimated from minute buckets.

    Buckets wholly inside count fully; the oldest, partly inside, counts by the
    share of it that is (the sliding-window estimate rate limiters use). Buckets
    after ``now`` (a worker's clock slightly ahead) count as now.
    """
    current = bucket_floor(now, Bucket.MINUTE)
    oldest = current - window
    outside_share = (now - current) / MINUTE
    total = Figures()
    for start, figures in minutes.items():
        if start > oldest:
            total += figures
        elif start == oldest:
            total += figures.scaled(1 - outside_share)
    return total
