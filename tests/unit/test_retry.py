"""Exponential backoff with full jitter, capped (DESIGN §2)."""

from __future__ import annotations

import math
import sys
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commq.domain.retry import RetryPolicy

SETTINGS = settings(max_examples=100, deadline=None, database=None)

DEFAULT = RetryPolicy()
JITTERS = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
ATTEMPTS = st.integers(min_value=1, max_value=10**30)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def test_the_default_policy_is_30_seconds_capped_at_an_hour() -> None:
    assert RetryPolicy(base=seconds(30), cap=seconds(3600)) == DEFAULT


# --- ceiling ------------------------------------------------------------------


def test_the_ceiling_of_the_first_attempt_is_the_base() -> None:
    assert DEFAULT.ceiling(1) == seconds(30)


def test_the_ceiling_doubles_with_each_attempt_until_the_cap() -> None:
    ceilings = [DEFAULT.ceiling(attempt) for attempt in range(1, 10)]

    assert ceilings == [seconds(s) for s in (30, 60, 120, 240, 480, 960, 1920, 3600, 3600)]


@pytest.mark.parametrize("attempt", [8, 9, 20, 63, 64, 1000])
def test_the_ceiling_never_exceeds_the_cap(attempt: int) -> None:
    assert DEFAULT.ceiling(attempt) == seconds(3600)


def test_fractional_base_and_cap_are_honoured() -> None:
    policy = RetryPolicy(base=seconds(0.2), cap=seconds(1))

    assert [policy.ceiling(n) for n in range(1, 6)] == [
        seconds(0.2),
        seconds(0.4),
        seconds(0.8),
        seconds(1),
        seconds(1),
    ]


@pytest.mark.parametrize("attempt", [0, -1, -(10**30)])
def test_an_attempt_below_one_is_treated_as_the_first(attempt: int) -> None:
    assert DEFAULT.ceiling(attempt) == seconds(30)


# --- full jitter --------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 5, 8, 50])
@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 0.999])
def test_the_backoff_is_the_ceiling_scaled_by_the_jitter(attempt: int, jitter: float) -> None:
    assert DEFAULT.backoff(attempt, jitter) == DEFAULT.ceiling(attempt) * jitter


def test_a_zero_jitter_retries_at_once() -> None:
    assert DEFAULT.backoff(3, 0.0) == timedelta(0)


@pytest.mark.parametrize("jitter", [-0.1, -0.0000001, 1.0, 1.5, math.inf, -math.inf, math.nan])
def test_a_jitter_outside_zero_to_one_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError, match=r"jitter must be in \[0, 1\)"):
        DEFAULT.backoff(1, jitter)


@SETTINGS
@given(attempt=ATTEMPTS, jitter=JITTERS)
def test_full_jitter_holds_for_any_attempt_and_jitter(attempt: int, jitter: float) -> None:
    assert DEFAULT.backoff(attempt, jitter) == DEFAULT.ceiling(attempt) * jitter


# --- Retry-After --------------------------------------------------------------


def test_a_larger_retry_after_wins_over_the_backoff() -> None:
    assert DEFAULT.backoff(1, 0.5, retry_after=seconds(20)) == seconds(20)


def test_a_retry_after_beyond_the_cap_still_wins() -> None:
    assert DEFAULT.backoff(1, 0.5, retry_after=seconds(7200)) == seconds(7200)


def test_a_smaller_retry_after_leaves_the_backoff_alone() -> None:
    assert DEFAULT.backoff(1, 0.5, retry_after=seconds(10)) == seconds(15)


@SETTINGS
@given(
    attempt=ATTEMPTS,
    jitter=JITTERS,
    retry_after=st.none() | st.timedeltas(min_value=seconds(-3600), max_value=timedelta(days=30)),
    base_ms=st.integers(min_value=1, max_value=3_600_000),
    extra_cap_ms=st.integers(min_value=0, max_value=30 * 86_400_000),
)
def test_the_backoff_stays_between_zero_and_the_cap_unless_retry_after_is_larger(
    attempt: int,
    jitter: float,
    retry_after: timedelta | None,
    base_ms: int,
    extra_cap_ms: int,
) -> None:
    base = timedelta(milliseconds=base_ms)
    policy = RetryPolicy(base=base, cap=base + timedelta(milliseconds=extra_cap_ms))

    delay = policy.backoff(attempt, jitter, retry_after)

    if retry_after is not None and retry_after > policy.ceiling(attempt) * jitter:
        assert delay == retry_after
    else:
        assert timedelta(0) <= delay <= policy.cap


# --- no overflow --------------------------------------------------------------


@pytest.mark.parametrize("attempt", [2**62, 2**63, 2**64, sys.maxsize, 10**100])
def test_a_huge_attempt_number_does_not_overflow(attempt: int) -> None:
    assert DEFAULT.ceiling(attempt) == seconds(3600)
    assert timedelta(0) <= DEFAULT.backoff(attempt, 0.999999) <= seconds(3600)


def test_a_huge_attempt_number_with_a_tiny_base_and_a_long_cap_reaches_the_cap() -> None:
    policy = RetryPolicy(base=timedelta(microseconds=1), cap=timedelta(days=1000))

    assert policy.ceiling(10**100) == timedelta(days=1000)
