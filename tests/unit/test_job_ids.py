"""Job ids (time-ordered UUIDv7, RFC 9562) and attempt durations."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commq.domain.jobs import duration_between, new_job_id, new_job_ids

SETTINGS = settings(max_examples=100, deadline=None, database=None)

MAX_UNIX_MS = (1 << 48) - 1
MILLISECONDS = st.integers(min_value=0, max_value=MAX_UNIX_MS)
A_MOMENT_MS = 1_767_268_800_000  # 2026-01-01T12:00:00Z
UTC_DATETIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


# --- ids ----------------------------------------------------------------------


def test_a_new_job_id_is_a_canonical_uuid_version_7_with_the_rfc_variant() -> None:
    job_id = new_job_id()
    parsed = uuid.UUID(job_id)

    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == job_id


@SETTINGS
@given(now_ms=MILLISECONDS)
def test_any_millisecond_gives_a_version_7_id_that_carries_it(now_ms: int) -> None:
    parsed = uuid.UUID(new_job_id(now_ms))

    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == now_ms


def test_without_a_time_the_id_carries_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    job_id = new_job_id()
    after = time.time_ns() // 1_000_000

    assert before <= uuid.UUID(job_id).int >> 80 <= after


def test_ids_made_at_increasing_milliseconds_sort_in_creation_order() -> None:
    ids = [new_job_id(A_MOMENT_MS + offset) for offset in range(0, 5000, 5)]

    assert sorted(ids) == ids


@SETTINGS
@given(moments=st.lists(MILLISECONDS, min_size=2, max_size=2, unique=True).map(sorted))
def test_an_id_from_a_later_millisecond_sorts_after_an_earlier_one(moments: list[int]) -> None:
    earlier, later = moments

    assert new_job_id(earlier) < new_job_id(later)


def test_ten_thousand_ids_are_unique() -> None:
    ids = {new_job_id() for _ in range(10_000)}

    assert len(ids) == 10_000


def test_ten_thousand_ids_in_the_same_millisecond_are_unique() -> None:
    ids = {new_job_id(A_MOMENT_MS) for _ in range(10_000)}

    assert len(ids) == 10_000


# --- durations ----------------------------------------------------------------

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("elapsed", "milliseconds"),
    [
        (timedelta(0), 0),
        (timedelta(microseconds=999), 0),
        (timedelta(milliseconds=1), 1),
        (timedelta(seconds=1, microseconds=500_999), 1500),
        (timedelta(hours=2), 7_200_000),
    ],
)
def test_a_duration_is_counted_in_whole_milliseconds(elapsed: timedelta, milliseconds: int) -> None:
    assert duration_between(START, START + elapsed) == milliseconds


def test_an_end_before_the_start_gives_zero_not_a_negative_duration() -> None:
    assert duration_between(START, START - timedelta(seconds=3)) == 0


@SETTINGS
@given(start=UTC_DATETIMES, end=UTC_DATETIMES)
def test_a_duration_is_never_negative(start: datetime, end: datetime) -> None:
    duration = duration_between(start, end)

    assert isinstance(duration, int)
    assert duration >= 0
    if end >= start:
        one_ms = timedelta(milliseconds=1)
        assert duration * one_ms <= end - start < (duration + 1) * one_ms


def test_ids_made_in_the_same_millisecond_sort_in_the_order_they_were_made() -> None:
    ids = [new_job_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 2000


def test_every_id_has_random_bits_of_its_own_across_refills_of_the_pool() -> None:
    ids = [uuid.UUID(new_job_id()) for _ in range(5 * 512)]
    random_bits = {u.int & ((1 << 62) - 1) for u in ids}
    assert len(random_bits) == len(ids)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)


# --- ids made together (a batch enqueue) ---------------------------------------


def test_ids_made_together_are_canonical_version_7_ids_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = new_job_ids(1000)
    after = time.time_ns() // 1_000_000

    parsed = [uuid.UUID(job_id) for job_id in ids]
    assert [str(u) for u in parsed] == ids
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    # More than 4,096 in one millisecond borrow the next ones, as one at a time does.
    assert all(before <= u.int >> 80 <= after + 1 for u in parsed)


def test_ids_made_together_sort_in_order_between_ids_made_before_and_after() -> None:
    ids = [new_job_id(), *new_job_ids(3), new_job_id(), *new_job_ids(9000), new_job_id()]

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_made_together_past_a_millisecond_s_4096_borrow_the_next_millisecond() -> None:
    ids = [uuid.UUID(job_id) for job_id in new_job_ids(3 * 4096)]
    sequences = [(u.int >> 64) & 0xFFF for u in ids]
    milliseconds = [u.int >> 80 for u in ids]

    assert len(set(milliseconds)) >= 3
    assert all(0 <= s <= 0xFFF for s in sequences)
    assert [u.int >> 64 for u in ids] == sorted(u.int >> 64 for u in ids)


def test_ids_made_together_each_have_random_bits_of_their_own() -> None:
    ids = [uuid.UUID(job_id) for job_id in new_job_ids(3 * 512 + 7) + new_job_ids(600)]
    random_bits = {u.int & ((1 << 62) - 1) for u in ids}

    assert len(random_bits) == len(ids)


def test_no_ids_asked_for_none_made() -> None:
    assert new_job_ids(0) == []
