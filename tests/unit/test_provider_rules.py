"""Rate-limit settings, monotonic delivery statuses and suppression rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commq.domain.delivery import advances, replaceable_by
from commq.domain.jobs import Channel, DeliveryStatus, Job, JobStatus
from commq.domain.outcomes import SendOutcome, SendResult
from commq.domain.ratelimit import RateLimit, parse_rate_limits
from commq.domain.suppression import (
    Suppression,
    SuppressionReason,
    recipient_key,
    suppression_error,
    suppression_from_result,
)

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_rate_limits_read_per_second_minute_and_hour() -> None:
    limits = parse_rate_limits("sendgrid=100/s, twilio = 10/m,smtp=3600/h")
    assert limits == {
        "sendgrid": RateLimit(100, timedelta(seconds=1)),
        "twilio": RateLimit(10, timedelta(minutes=1)),
        "smtp": RateLimit(3600, timedelta(hours=1)),
    }
    assert limits["sendgrid"].interval == timedelta(milliseconds=10)
    assert limits["twilio"].interval == timedelta(seconds=6)
    assert parse_rate_limits("") == {}


def test_a_batch_of_slots_covers_its_window_and_is_never_empty() -> None:
    window = timedelta(milliseconds=250)
    assert RateLimit(100, timedelta(seconds=1)).batch(window) == 25
    assert RateLimit(10, timedelta(minutes=1)).batch(window) == 1


@pytest.mark.parametrize("text", ["sendgrid", "sendgrid=100", "sendgrid=0/s", "x=5/d", "=1/s"])
def test_unreadable_rate_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"provider=N/s|count must be"):
        parse_rate_limits(text)


def test_delivery_status_only_moves_forward() -> None:
    assert advances(None, DeliveryStatus.ACCEPTED)
    assert advances(DeliveryStatus.ACCEPTED, DeliveryStatus.DELIVERED)
    assert not advances(DeliveryStatus.DELIVERED, DeliveryStatus.ACCEPTED)
    assert not advances(DeliveryStatus.DELIVERED, DeliveryStatus.BOUNCED)
    assert not advances(DeliveryStatus.ACCEPTED, DeliveryStatus.ACCEPTED)
    assert replaceable_by(DeliveryStatus.ACCEPTED) == frozenset()


def _sms_job() -> Job:
    return Job(
        "job-1", "acme", Channel.SMS, "+14155550100", {"body": "hi"}, JobStatus.PROCESSING,
        0, 1, 3, T0, T0, T0,
    )  # fmt: skip


def test_a_twilio_stop_answer_suppresses_the_number() -> None:
    stop = SendResult(
        SendOutcome.PERMANENT, "twilio", error="21610: unsubscribed recipient", error_code="21610"
    )
    assert suppression_from_result(_sms_job(), stop) == Suppression(
        "acme", Channel.SMS, "+14155550100", SuppressionReason.STOP, "job-1"
    )
    other = SendResult(
        SendOutcome.PERMANENT, "twilio", error="21211: +14155521610 is invalid", error_code="21211"
    )
    assert suppression_from_result(_sms_job(), other) is None


def test_the_refusal_names_the_suppression() -> None:
    entry = Suppression(
        "acme", Channel.EMAIL, "ana@x.io", SuppressionReason.HARD_BOUNCE, "job-7", T0
    )
    assert (
        suppression_error(entry) == "recipient is suppressed: hard bounce on 2026-05-01 (job job-7)"
    )
    assert recipient_key(Channel.EMAIL, " Ana@X.io ") == "ana@x.io"
    assert recipient_key(Channel.SMS, "+1555") == "+1555"
