"""Pure rules of the operations API: ages, bulk requests, buckets, windows, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from commq.domain.analytics import (
    MAX_BUCKETS,
    Bucket,
    Figures,
    GroupBy,
    HistoryQuery,
    bucket_count,
    bucket_floor,
    bucket_starts,
    build_history,
    window_sum,
)
from commq.domain.errors import InvalidJobError
from commq.domain.jobs import Channel, ErrorType, JobStatus
from commq.domain.listing import JobFilter
from commq.domain.operations import MAX_BULK_IDS, BulkRequest, filter_json, parse_age

T0 = datetime(2025, 3, 4, 10, 20, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("45s", 45),
        ("3600", 3600),
        (" 2D ", 172800),
        ("1.5h", 5400),
    ],
)
def test_an_age_reads_days_hours_minutes_seconds_or_plain_seconds(text: str, seconds: int) -> None:
    assert parse_age(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30x", "d", "-5d", "0", "0d", "thirty days", "1e9d", "5 d h"])
def test_anything_else_is_not_an_age(text: str) -> None:
    with pytest.raises(ValueError, match=r"30d|more than 0"):
        parse_age(text)


def test_a_bulk_request_names_one_to_ten_thousand_ids() -> None:
    BulkRequest(JobFilter(), ("a",) * MAX_BULK_IDS)
    for ids in [(), ("a",) * (MAX_BULK_IDS + 1)]:
        with pytest.raises(InvalidJobError) as raised:
            BulkRequest(JobFilter(), ids)
        assert raised.value.field == "ids"


def test_the_audit_filter_lists_the_fields_that_were_set_in_camel_case() -> None:
    where = JobFilter(
        business_id="acme",
        status=JobStatus.FAILED,
        channel=Channel.EMAIL,
        error_type=ErrorType.PERMANENT,
        communication_id="welcome-1",
        created_from=T0,
    )
    assert filter_json(BulkRequest(where, ("j1", "j2"))) == {
        "status": "failed",
        "channel": "email",
        "errorType": "permanent",
        "communicationId": "welcome-1",
        "createdFrom": "2025-03-04T10:20:30Z",
        "ids": ["j1", "j2"],
    }
    assert filter_json(BulkRequest(JobFilter())) == {}


@pytest.mark.parametrize(
    ("bucket", "floor"),
    [
        (Bucket.MINUTE, datetime(2025, 3, 4, 10, 20, tzinfo=UTC)),
        (Bucket.HOUR, datetime(2025, 3, 4, 10, tzinfo=UTC)),
        (Bucket.DAY, datetime(2025, 3, 4, tzinfo=UTC)),
    ],
)
def test_buckets_start_on_utc_boundaries(bucket: Bucket, floor: datetime) -> None:
    in_paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    assert bucket_floor(in_paris, bucket) == floor


def test_the_buckets_of_a_range_start_at_the_one_holding_from_and_stop_before_to() -> None:
    starts = bucket_starts(T0, T0 + timedelta(hours=2), Bucket.HOUR)
    assert starts == [datetime(2025, 3, 4, h, tzinfo=UTC) for h in (10, 11, 12)]
    assert bucket_count(T0, T0 + timedelta(minutes=1), Bucket.DAY) == 1


def test_a_history_query_names_the_field_it_refuses() -> None:
    for start, end, bucket, field in [
        (T0, T0, Bucket.HOUR, "from"),
        (T0, T0 - timedelta(days=1), Bucket.DAY, "from"),
        (T0, T0 + timedelta(minutes=MAX_BUCKETS + 1), Bucket.MINUTE, "to"),
        (T0.replace(tzinfo=None), T0 + timedelta(hours=1), Bucket.HOUR, "from"),
    ]:
        with pytest.raises(InvalidJobError) as raised:
            HistoryQuery(start, end, bucket)
        assert raised.value.field == field
    HistoryQuery(T0, T0 + timedelta(minutes=MAX_BUCKETS - 1), Bucket.MINUTE)


def test_a_window_counts_whole_minutes_and_the_share_of_the_oldest_inside_it() -> None:
    now = datetime(2025, 3, 4, 10, 20, 15, tzinfo=UTC)  # a quarter into the minute
    minute = timedelta(minutes=1)
    current = bucket_floor(now, Bucket.MINUTE)
    minutes = {
        current + minute: Figures(completed=1),  # a worker's clock ahead: counts as now
        current: Figures(completed=10),
        current - minute: Figures(completed=100),  # three quarters inside the last minute
        current - 2 * minute: Figures(completed=1000),
    }
    assert window_sum(minutes, now, minute).completed == pytest.approx(1 + 10 + 75)
    assert window_sum(minutes, now, 2 * minute).completed == pytest.approx(111 + 750)


def test_figures_give_the_mean_processing_time_and_the_failure_rate() -> None:
    figures = Figures(succeeded_attempts=3, failed_attempts=1, duration_ms=6000)
    assert figures.avg_processing_time_seconds == 2.0
    assert figures.failure_rate == 0.25
    assert Figures().avg_processing_time_seconds is None
    assert Figures().failure_rate is None
    assert (figures + figures.scaled(0.5)).duration_ms == 9000


def test_a_history_is_dense_with_one_series_per_group() -> None:
    query = HistoryQuery(T0, T0 + timedelta(hours=2), Bucket.HOUR, GroupBy.CHANNEL)
    ten = datetime(2025, 3, 4, 10, tzinfo=UTC)
    sums = {("sms", ten): Figures(enqueued=2), (None, ten + timedelta(hours=2)): Figures(failed=1)}
    history = build_history(query, sums)
    assert [s.group for s in history.series] == [None, "sms"]
    sms = history.series[1]
    assert [p.at.hour for p in sms.points] == [10, 11, 12]
    assert [p.figures.enqueued for p in sms.points] == [2, 0, 0]
    ungrouped = build_history(HistoryQuery(T0, T0 + timedelta(minutes=30), Bucket.HOUR), {})
    assert [(s.group, len(s.points)) for s in ungrouped.series] == [(None, 1)]
