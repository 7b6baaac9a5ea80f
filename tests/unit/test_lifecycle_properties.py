"""One job's whole life, driven only by the domain's rules: no sequence of
worker events and operator actions reaches a state DESIGN §2 does not define.

The model keeps the job as a domain ``Job`` and moves it only through
``transition`` / ``check_action`` (and ``decide`` for send results), counting
attempts as DESIGN §2 describes: a claim adds one, a release gives it back, an
operator retry resets to zero, and a lost lease returns the job to pending
while it has attempts left (and fails it once they are spent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from commq.domain.errors import InvalidTransitionError
from commq.domain.jobs import Channel, ErrorType, Job, JobStatus
from commq.domain.outcomes import SendOutcome, SendResult, decide
from commq.domain.retry import RetryPolicy
from commq.domain.transitions import TARGET, Action, Event, check_action, transition

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(seconds=3600))
#: The full-jitter draw does not change the job's state, only its delay.
JITTER = 0.5
RECIPIENTS = {
    Channel.EMAIL: "ada@example.com",
    Channel.SMS: "+15555550100",
    Channel.WEBHOOK: "https://hooks.example.com/commq",
}

#: What each status accepts, per DESIGN §2 (events) and §3 (operator actions).
ACCEPTED_EVENTS: dict[JobStatus, frozenset[Event]] = {
    JobStatus.PENDING: frozenset({Event.CLAIM, Event.CANCEL}),
    JobStatus.PROCESSING: frozenset(
        {Event.SUCCEED, Event.RETRY_LATER, Event.GIVE_UP, Event.LOSE_LEASE, Event.RELEASE}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset({Event.RETRY}),
    JobStatus.CANCELLED: frozenset({Event.RETRY}),
}
ACCEPTED_ACTIONS: dict[JobStatus, frozenset[Action]] = {
    JobStatus.PENDING: frozenset({Action.CANCEL, Action.DELETE}),
    JobStatus.PROCESSING: frozenset(),
    JobStatus.COMPLETED: frozenset({Action.DELETE}),
    JobStatus.FAILED: frozenset({Action.RETRY, Action.DELETE}),
    JobStatus.CANCELLED: frozenset({Action.RETRY, Action.DELETE}),
}

#: The event a worker reports for each status ``decide`` can choose.
EVENT_FOR_DECISION = {
    JobStatus.COMPLETED: Event.SUCCEED,
    JobStatus.PENDING: Event.RETRY_LATER,
    JobStatus.FAILED: Event.GIVE_UP,
}

_PROCESSING = frozenset({JobStatus.PROCESSING})
#: Each operation of the model and the statuses DESIGN §2 allows it from.
ALLOWED_FROM: dict[str, frozenset[JobStatus]] = {
    "claim": frozenset({JobStatus.PENDING}),
    "succeed": _PROCESSING,
    "fail_transiently": _PROCESSING,
    "fail_permanently": _PROCESSING,
    "fail_ambiguously": _PROCESSING,
    "lose_lease": _PROCESSING,
    "release": _PROCESSING,
    "operator_retry": frozenset({JobStatus.FAILED, JobStatus.CANCELLED}),
    "operator_cancel": frozenset({JobStatus.PENDING}),
    "operator_delete": frozenset(set(JobStatus) - _PROCESSING),
}


def accepts_event(status: JobStatus, event: Event) -> bool:
    """Whether the domain lets ``event`` happen; any error but a refusal propagates."""
    try:
        transition(status, event)
    except InvalidTransitionError:
        return False
    return True


def accepts_action(status: JobStatus, action: Action) -> bool:
    """Whether the domain lets an operator apply ``action``."""
    try:
        check_action(action, status)
    except InvalidTransitionError:
        return False
    return True


def allowed(operation: str) -> Callable[[JobLifecycle], bool]:
    """A precondition: the job's status allows ``operation``."""
    return lambda machine: machine.job.status in ALLOWED_FROM[operation]


def enqueued_job(channel: Channel, max_attempts: int) -> Job:
    return Job(
        id="0190a6f0-0000-7000-8000-000000000001",
        business_id="acme",
        channel=channel,
        recipient=RECIPIENTS[channel],
        payload={},
        status=JobStatus.PENDING,
        priority=0,
        attempts=0,
        max_attempts=max_attempts,
        run_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


class JobLifecycle(RuleBasedStateMachine):
    """A single job under any interleaving of worker events and operator actions.

    Each operation is a rule that runs where DESIGN §2 allows it (so the run
    keeps moving), and must then succeed; one more rule tries an operation the
    status refuses, which must raise InvalidTransitionError and change nothing.
    """

    job: Job

    @initialize(channel=st.sampled_from(Channel), max_attempts=st.integers(1, 3))
    def enqueue(self, channel: Channel, max_attempts: int) -> None:
        self.job = enqueued_job(channel, max_attempts)

    # --- how a step is applied (a refusal raises before anything changes) -----

    def _apply(self, event: Event, **changes: Any) -> None:
        status = transition(self.job.status, event)
        self.job = replace(self.job, status=status, **changes)

    def _send(self, result: SendResult) -> None:
        decision = decide(self.job, result, POLICY, JITTER)
        event = EVENT_FOR_DECISION[decision.status]
        self._apply(event, error_type=decision.error_type, last_error=decision.last_error)
        assert self.job.status is decision.status

    def _operate(self, action: Action, event: Event, **changes: Any) -> None:
        try:
            check_action(action, self.job.status)
        except InvalidTransitionError:
            with pytest.raises(InvalidTransitionError):  # the event table agrees
                transition(self.job.status, event)
            raise
        self._apply(event, **changes)
        assert self.job.status is TARGET[action]

    # --- worker ---------------------------------------------------------------

    @precondition(allowed("claim"))
    @rule()
    def claim(self) -> None:
        self._apply(Event.CLAIM, attempts=self.job.attempts + 1)

    @precondition(allowed("succeed"))
    @rule()
    def succeed(self) -> None:
        self._send(SendResult.ok("smtp", "msg-1"))

    @precondition(allowed("fail_transiently"))
    @rule()
    def fail_transiently(self) -> None:
        self._send(SendResult(SendOutcome.TRANSIENT, "smtp", error="421 try later"))

    @precondition(allowed("fail_permanently"))
    @rule()
    def fail_permanently(self) -> None:
        self._send(SendResult(SendOutcome.PERMANENT, "smtp", error="550 no such user"))
        assert self.job.status is JobStatus.FAILED

    @precondition(allowed("fail_ambiguously"))
    @rule()
    def fail_ambiguously(self) -> None:
        self._send(SendResult(SendOutcome.AMBIGUOUS, "smtp", error="timed out"))
        if self.job.channel is not Channel.WEBHOOK:
            assert self.job.status is JobStatus.FAILED
        elif self.job.attempts < self.job.max_attempts:
            assert self.job.status is JobStatus.PENDING

    @precondition(allowed("lose_lease"))
    @rule()
    def lose_lease(self) -> None:
        if self.job.status is JobStatus.PROCESSING and self.job.attempts >= self.job.max_attempts:
            # As the store's reclaim does: it may have been sent before the worker went quiet.
            self._apply(Event.GIVE_UP, error_type=ErrorType.AMBIGUOUS, last_error="lease expired")
        else:
            self._apply(Event.LOSE_LEASE)

    @precondition(allowed("release"))
    @rule()
    def release(self) -> None:
        self._apply(Event.RELEASE, attempts=self.job.attempts - 1)

    # --- operator -------------------------------------------------------------

    @precondition(allowed("operator_retry"))
    @rule()
    def operator_retry(self) -> None:
        self._operate(Action.RETRY, Event.RETRY, attempts=0, last_error=None, error_type=None)

    @precondition(allowed("operator_cancel"))
    @rule()
    def operator_cancel(self) -> None:
        self._operate(Action.CANCEL, Event.CANCEL)

    @precondition(allowed("operator_delete"))
    @rule()
    def operator_delete(self) -> None:
        check_action(Action.DELETE, self.job.status)
        assert TARGET[Action.DELETE] is None
        # The job is gone; the next one of the same kind keeps the run going.
        self.job = enqueued_job(self.job.channel, self.job.max_attempts)

    # --- refusals ---------------------------------------------------------------

    @rule(data=st.data())
    def a_refused_operation_raises_and_changes_nothing(self, data: st.DataObject) -> None:
        status = self.job.status
        refused = sorted(op for op, sources in ALLOWED_FROM.items() if status not in sources)
        operation = data.draw(st.sampled_from(refused), label="operation")
        perform = getattr(self, operation)
        before = self.job

        with pytest.raises(InvalidTransitionError):
            perform()

        assert self.job == before

    # --- invariants -----------------------------------------------------------

    @invariant()
    def the_status_is_a_job_status(self) -> None:
        assert self.job.status in set(JobStatus)

    @invariant()
    def attempts_stay_between_zero_and_max_attempts(self) -> None:
        assert 0 <= self.job.attempts <= self.job.max_attempts

    @invariant()
    def a_pending_job_always_has_an_attempt_left(self) -> None:
        if self.job.status is JobStatus.PENDING:
            assert self.job.attempts < self.job.max_attempts

    @invariant()
    def a_processing_job_never_accepts_retry_cancel_or_delete(self) -> None:
        if self.job.status is JobStatus.PROCESSING:
            assert not any(accepts_action(JobStatus.PROCESSING, action) for action in Action)
            assert not accepts_event(JobStatus.PROCESSING, Event.RETRY)
            assert not accepts_event(JobStatus.PROCESSING, Event.CANCEL)

    @invariant()
    def a_completed_job_accepts_nothing_but_delete(self) -> None:
        if self.job.status is JobStatus.COMPLETED:
            assert not any(accepts_event(JobStatus.COMPLETED, event) for event in Event)
            assert {a for a in Action if accepts_action(JobStatus.COMPLETED, a)} == {Action.DELETE}

    @invariant()
    def a_failed_or_cancelled_job_accepts_only_retry_and_delete(self) -> None:
        status = self.job.status
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            assert {e for e in Event if accepts_event(status, e)} == {Event.RETRY}
            assert {a for a in Action if accepts_action(status, a)} == {
                Action.RETRY,
                Action.DELETE,
            }

    @invariant()
    def the_status_accepts_exactly_what_the_design_allows(self) -> None:
        status = self.job.status
        assert {e for e in Event if accepts_event(status, e)} == ACCEPTED_EVENTS[status]
        assert {a for a in Action if accepts_action(status, a)} == ACCEPTED_ACTIONS[status]


def test_no_sequence_of_operations_reaches_an_undefined_state() -> None:
    run_state_machine_as_test(
        JobLifecycle,
        settings=settings(max_examples=100, stateful_step_count=20, deadline=None, database=None),
    )


def test_the_model_reaches_every_status_along_one_scripted_life() -> None:
    machine = JobLifecycle()
    machine.enqueue(Channel.EMAIL, max_attempts=2)
    seen = [machine.job.status]

    steps = [
        machine.claim,
        machine.fail_transiently,
        machine.claim,
        machine.fail_transiently,
        machine.operator_retry,
        machine.operator_cancel,
        machine.operator_retry,
        machine.claim,
        machine.succeed,
    ]
    for step in steps:
        step()
        seen.append(machine.job.status)

    assert seen == [
        JobStatus.PENDING,
        JobStatus.PROCESSING,
        JobStatus.PENDING,
        JobStatus.PROCESSING,
        JobStatus.FAILED,
        JobStatus.PENDING,
        JobStatus.CANCELLED,
        JobStatus.PENDING,
        JobStatus.PROCESSING,
        JobStatus.COMPLETED,
    ]
    assert machine.job.attempts == 1


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.SMS])
def test_the_model_fails_an_ambiguous_email_or_sms_at_once(channel: Channel) -> None:
    machine = JobLifecycle()
    machine.enqueue(channel, max_attempts=5)
    machine.claim()

    machine.fail_ambiguously()

    assert machine.job.status is JobStatus.FAILED
    assert machine.job.error_type is ErrorType.AMBIGUOUS


def test_the_model_returns_a_lost_lease_to_pending_and_keeps_the_attempt() -> None:
    machine = JobLifecycle()
    machine.enqueue(Channel.WEBHOOK, max_attempts=3)
    machine.claim()

    machine.lose_lease()

    assert machine.job.status is JobStatus.PENDING
    assert machine.job.attempts == 1
