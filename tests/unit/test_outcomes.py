"""What the queue decides after one send attempt (DESIGN §2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commq.domain.jobs import AttemptOutcome, Channel, ErrorType, Job, JobStatus
from commq.domain.outcomes import Blame, Decision, SendOutcome, SendResult, decide
from commq.domain.retry import RetryPolicy

SETTINGS = settings(max_examples=100, deadline=None, database=None)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(seconds=3600))
RECIPIENTS = {
    Channel.EMAIL: "ada@example.com",
    Channel.SMS: "+15555550100",
    Channel.WEBHOOK: "https://hooks.example.com/commq",
}
JITTERS = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def claimed_job(channel: Channel = Channel.EMAIL, attempts: int = 1, max_attempts: int = 3) -> Job:
    """A job a worker has claimed: ``attempts`` already counts the attempt in flight."""
    return Job(
        id="0190a6f0-0000-7000-8000-000000000001",
        business_id="acme",
        channel=channel,
        recipient=RECIPIENTS[channel],
        payload={},
        status=JobStatus.PROCESSING,
        priority=0,
        attempts=attempts,
        max_attempts=max_attempts,
        run_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


def failure(outcome: SendOutcome, retry_after: timedelta | None = None) -> SendResult:
    return SendResult(
        outcome, provider="smtp", error=f"{outcome.value} trouble", retry_after=retry_after
    )


# --- success ------------------------------------------------------------------


@pytest.mark.parametrize("channel", list(Channel))
def test_an_ok_result_completes_the_job(channel: Channel) -> None:
    decision = decide(claimed_job(channel), SendResult.ok("smtp", "msg-1"), POLICY, 0.5)

    assert decision == Decision(
        status=JobStatus.COMPLETED,
        attempt_outcome=AttemptOutcome.SUCCEEDED,
        error_type=None,
        last_error=None,
        retry_in=None,
    )


def test_an_ok_result_on_the_last_attempt_still_completes_the_job() -> None:
    job = claimed_job(attempts=3, max_attempts=3)

    assert decide(job, SendResult.ok("smtp"), POLICY, 0.5).status is JobStatus.COMPLETED


# --- transient ----------------------------------------------------------------


def test_a_transient_error_with_attempts_left_sends_the_job_back_to_pending() -> None:
    decision = decide(claimed_job(attempts=1), failure(SendOutcome.TRANSIENT), POLICY, 0.5)

    assert decision == Decision(
        status=JobStatus.PENDING,
        attempt_outcome=AttemptOutcome.TRANSIENT_ERROR,
        error_type=ErrorType.TRANSIENT,
        last_error="transient trouble",
        retry_in=timedelta(seconds=15),
    )


@SETTINGS
@given(
    max_attempts=st.integers(min_value=2, max_value=20),
    data=st.data(),
    jitter=JITTERS,
    channel=st.sampled_from(Channel),
)
def test_a_transient_retry_waits_no_longer_than_the_backoff_ceiling(
    max_attempts: int, data: st.DataObject, jitter: float, channel: Channel
) -> None:
    attempts = data.draw(st.integers(min_value=1, max_value=max_attempts - 1))
    job = claimed_job(channel, attempts=attempts, max_attempts=max_attempts)

    decision = decide(job, failure(SendOutcome.TRANSIENT), POLICY, jitter)

    assert decision.status is JobStatus.PENDING
    assert decision.retry_in is not None
    assert timedelta(0) <= decision.retry_in <= POLICY.ceiling(attempts)


def test_a_later_attempt_backs_off_from_a_doubled_ceiling() -> None:
    job = claimed_job(attempts=2, max_attempts=5)

    decision = decide(job, failure(SendOutcome.TRANSIENT), POLICY, 0.5)

    assert decision.retry_in == timedelta(seconds=30)


@pytest.mark.parametrize("max_attempts", [1, 3, 7])
def test_a_transient_error_with_attempts_spent_fails_the_job_as_transient(
    max_attempts: int,
) -> None:
    job = claimed_job(attempts=max_attempts, max_attempts=max_attempts)

    decision = decide(job, failure(SendOutcome.TRANSIENT), POLICY, 0.5)

    assert decision == Decision(
        status=JobStatus.FAILED,
        attempt_outcome=AttemptOutcome.TRANSIENT_ERROR,
        error_type=ErrorType.TRANSIENT,
        last_error="transient trouble",
        retry_in=None,
    )


# --- permanent ----------------------------------------------------------------


@pytest.mark.parametrize("channel", list(Channel))
def test_a_permanent_error_fails_the_job_on_its_first_attempt(channel: Channel) -> None:
    job = claimed_job(channel, attempts=1, max_attempts=5)

    decision = decide(job, failure(SendOutcome.PERMANENT), POLICY, 0.5)

    assert decision == Decision(
        status=JobStatus.FAILED,
        attempt_outcome=AttemptOutcome.PERMANENT_ERROR,
        error_type=ErrorType.PERMANENT,
        last_error="permanent trouble",
        retry_in=None,
    )


# --- ambiguous ----------------------------------------------------------------


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.SMS])
def test_an_ambiguous_email_or_sms_fails_even_with_attempts_left(channel: Channel) -> None:
    job = claimed_job(channel, attempts=1, max_attempts=5)

    decision = decide(job, failure(SendOutcome.AMBIGUOUS), POLICY, 0.5)

    assert decision == Decision(
        status=JobStatus.FAILED,
        attempt_outcome=AttemptOutcome.AMBIGUOUS_ERROR,
        error_type=ErrorType.AMBIGUOUS,
        last_error="ambiguous trouble",
        retry_in=None,
    )


def test_an_ambiguous_webhook_is_retried_while_attempts_are_left() -> None:
    job = claimed_job(Channel.WEBHOOK, attempts=1, max_attempts=3)

    decision = decide(job, failure(SendOutcome.AMBIGUOUS), POLICY, 0.5)

    assert decision == Decision(
        status=JobStatus.PENDING,
        attempt_outcome=AttemptOutcome.AMBIGUOUS_ERROR,
        error_type=ErrorType.AMBIGUOUS,
        last_error="ambiguous trouble",
        retry_in=timedelta(seconds=15),
    )


def test_an_ambiguous_webhook_fails_once_its_attempts_are_spent() -> None:
    job = claimed_job(Channel.WEBHOOK, attempts=3, max_attempts=3)

    decision = decide(job, failure(SendOutcome.AMBIGUOUS), POLICY, 0.5)

    assert decision.status is JobStatus.FAILED
    assert decision.error_type is ErrorType.AMBIGUOUS
    assert decision.retry_in is None


# --- Retry-After --------------------------------------------------------------


@pytest.mark.parametrize(
    "retry_after",
    [timedelta(seconds=16), timedelta(minutes=10), timedelta(hours=2)],
    ids=["just-above-the-backoff", "above-the-ceiling", "above-the-cap"],
)
def test_a_retry_after_larger_than_the_backoff_wins(retry_after: timedelta) -> None:
    job = claimed_job(attempts=1)

    decision = decide(job, failure(SendOutcome.TRANSIENT, retry_after), POLICY, 0.5)

    assert decision.retry_in == retry_after


def test_a_retry_after_smaller_than_the_backoff_is_ignored() -> None:
    job = claimed_job(attempts=1)

    decision = decide(job, failure(SendOutcome.TRANSIENT, timedelta(seconds=5)), POLICY, 0.5)

    assert decision.retry_in == timedelta(seconds=15)


def test_a_retry_after_also_delays_an_ambiguous_webhook() -> None:
    job = claimed_job(Channel.WEBHOOK, attempts=1)

    decision = decide(job, failure(SendOutcome.AMBIGUOUS, timedelta(hours=1)), POLICY, 0.0)

    assert decision.retry_in == timedelta(hours=1)


def test_a_retry_after_does_not_revive_a_job_whose_attempts_are_spent() -> None:
    job = claimed_job(attempts=3, max_attempts=3)

    decision = decide(job, failure(SendOutcome.TRANSIENT, timedelta(minutes=5)), POLICY, 0.5)

    assert decision.status is JobStatus.FAILED
    assert decision.retry_in is None


# --- attempt outcomes and errors ----------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "attempt_outcome"),
    [
        (SendOutcome.OK, AttemptOutcome.SUCCEEDED),
        (SendOutcome.TRANSIENT, AttemptOutcome.TRANSIENT_ERROR),
        (SendOutcome.PERMANENT, AttemptOutcome.PERMANENT_ERROR),
        (SendOutcome.AMBIGUOUS, AttemptOutcome.AMBIGUOUS_ERROR),
    ],
)
@pytest.mark.parametrize("attempts", [1, 3], ids=["attempts-left", "attempts-spent"])
@pytest.mark.parametrize("channel", list(Channel))
def test_each_send_outcome_is_recorded_as_its_attempt_outcome(
    outcome: SendOutcome, attempt_outcome: AttemptOutcome, attempts: int, channel: Channel
) -> None:
    job = claimed_job(channel, attempts=attempts, max_attempts=3)
    result = SendResult(outcome, provider="smtp", error="boom")

    assert decide(job, result, POLICY, 0.5).attempt_outcome is attempt_outcome


@pytest.mark.parametrize(
    "outcome", [SendOutcome.TRANSIENT, SendOutcome.PERMANENT, SendOutcome.AMBIGUOUS]
)
@pytest.mark.parametrize("attempts", [1, 3], ids=["attempts-left", "attempts-spent"])
@pytest.mark.parametrize("channel", list(Channel))
def test_a_failure_carries_the_senders_error_as_last_error(
    outcome: SendOutcome, attempts: int, channel: Channel
) -> None:
    job = claimed_job(channel, attempts=attempts, max_attempts=3)
    result = SendResult(outcome, provider="smtp", error="550 5.1.1 no such user")

    assert decide(job, result, POLICY, 0.5).last_error == "550 5.1.1 no such user"


def test_success_clears_last_error_even_if_the_job_had_one() -> None:
    job = replace(claimed_job(attempts=2), last_error="421 try later")

    assert decide(job, SendResult.ok("smtp"), POLICY, 0.5).last_error is None


def test_a_jitter_outside_the_unit_interval_is_refused_when_a_retry_is_scheduled() -> None:
    with pytest.raises(ValueError, match="jitter"):
        decide(claimed_job(attempts=1), failure(SendOutcome.TRANSIENT), POLICY, 1.0)


@pytest.mark.parametrize("blame", [Blame.PROVIDER, Blame.RATE_LIMIT])
@pytest.mark.parametrize("outcome", [SendOutcome.TRANSIENT, SendOutcome.PERMANENT])
def test_a_provider_or_rate_limit_failure_waits_without_using_an_attempt(
    blame: Blame, outcome: SendOutcome
) -> None:
    job = claimed_job(attempts=3, max_attempts=3)
    result = SendResult(
        outcome, "sendgrid", error="503", blame=blame, retry_after=timedelta(seconds=40)
    )
    decision = decide(job, result, POLICY, 0.0)
    assert decision.status is JobStatus.PENDING
    assert decision.counts_attempt is False
    assert decision.error_type is ErrorType.TRANSIENT
    assert decision.retry_in == timedelta(seconds=40)


def test_an_ambiguous_answer_stays_ambiguous_whoever_is_blamed() -> None:
    result = SendResult(SendOutcome.AMBIGUOUS, "twilio", error="timeout", blame=Blame.PROVIDER)
    decision = decide(claimed_job(Channel.SMS), result, POLICY, 0.0)
    assert decision.status is JobStatus.FAILED
    assert decision.counts_attempt is True
