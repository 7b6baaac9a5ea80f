"""The job state machine of DESIGN §2: every allowed move, and every refused one."""

from __future__ import annotations

import itertools

import pytest

from commq.domain.errors import CommqError, InvalidTransitionError
from commq.domain.jobs import JobStatus
from commq.domain.transitions import (
    TARGET,
    TRANSITIONS,
    Action,
    Event,
    allowed_sources,
    check_action,
    transition,
)

PENDING = JobStatus.PENDING
PROCESSING = JobStatus.PROCESSING
COMPLETED = JobStatus.COMPLETED
FAILED = JobStatus.FAILED
CANCELLED = JobStatus.CANCELLED

#: DESIGN §2's diagram, written out independently of the code under test.
DESIGN_TRANSITIONS: dict[tuple[JobStatus, Event], JobStatus] = {
    (PENDING, Event.CLAIM): PROCESSING,
    (PENDING, Event.CANCEL): CANCELLED,
    (PROCESSING, Event.SUCCEED): COMPLETED,
    (PROCESSING, Event.RETRY_LATER): PENDING,
    (PROCESSING, Event.GIVE_UP): FAILED,
    (PROCESSING, Event.LOSE_LEASE): PENDING,
    (PROCESSING, Event.RELEASE): PENDING,
    (FAILED, Event.RETRY): PENDING,
    (CANCELLED, Event.RETRY): PENDING,
}

REFUSED_PAIRS = [
    pair for pair in itertools.product(JobStatus, Event) if pair not in DESIGN_TRANSITIONS
]

#: DESIGN §2 and §3: retry 409 unless failed or cancelled, cancel 409 unless
#: pending, delete 409 while processing.
DESIGN_SOURCES: dict[Action, frozenset[JobStatus]] = {
    Action.RETRY: frozenset({FAILED, CANCELLED}),
    Action.CANCEL: frozenset({PENDING}),
    Action.DELETE: frozenset({PENDING, COMPLETED, FAILED, CANCELLED}),
}

ALLOWED_ACTIONS = [
    (action, status) for action, sources in DESIGN_SOURCES.items() for status in sorted(sources)
]
REFUSED_ACTIONS = [
    (action, status)
    for action, status in itertools.product(Action, JobStatus)
    if status not in DESIGN_SOURCES[action]
]


def _pair_id(pair: object) -> str:
    return "-".join(str(part) for part in pair) if isinstance(pair, tuple) else str(pair)


# --- worker and operator events ---------------------------------------------


def test_the_transition_table_is_exactly_the_design_diagram() -> None:
    assert TRANSITIONS == DESIGN_TRANSITIONS


@pytest.mark.parametrize(
    ("status", "event", "target"),
    [(status, event, target) for (status, event), target in DESIGN_TRANSITIONS.items()],
    ids=[f"{status}-{event}" for status, event in DESIGN_TRANSITIONS],
)
def test_an_allowed_event_moves_the_job_where_the_design_says(
    status: JobStatus, event: Event, target: JobStatus
) -> None:
    assert transition(status, event) is target


@pytest.mark.parametrize(("status", "event"), REFUSED_PAIRS, ids=map(_pair_id, REFUSED_PAIRS))
def test_an_event_the_design_does_not_list_is_refused(status: JobStatus, event: Event) -> None:
    with pytest.raises(InvalidTransitionError):
        transition(status, event)


def test_every_status_and_event_pair_is_either_allowed_or_refused() -> None:
    assert len(DESIGN_TRANSITIONS) + len(REFUSED_PAIRS) == len(JobStatus) * len(Event)
    assert len(REFUSED_PAIRS) == 31


@pytest.mark.parametrize("event", list(Event))
def test_a_completed_job_accepts_no_event(event: Event) -> None:
    with pytest.raises(InvalidTransitionError):
        transition(COMPLETED, event)


def test_a_refused_event_names_the_status_and_the_event_in_plain_words() -> None:
    with pytest.raises(InvalidTransitionError) as refusal:
        transition(COMPLETED, Event.CLAIM)

    assert str(refusal.value) == "A completed job does not allow claim"


@pytest.mark.parametrize(("status", "event"), REFUSED_PAIRS, ids=map(_pair_id, REFUSED_PAIRS))
def test_no_refusal_message_leaks_enum_reprs(status: JobStatus, event: Event) -> None:
    with pytest.raises(InvalidTransitionError) as refusal:
        transition(status, event)

    message = str(refusal.value)
    assert status.value in message
    assert event.value in message
    assert "JobStatus" not in message
    assert "Event." not in message


def test_a_refused_transition_is_a_commq_error() -> None:
    assert issubclass(InvalidTransitionError, CommqError)


# --- operator actions ---------------------------------------------------------


@pytest.mark.parametrize("action", list(Action))
def test_the_allowed_sources_of_an_action_are_the_designs(action: Action) -> None:
    assert allowed_sources(action) == DESIGN_SOURCES[action]


def test_retry_is_allowed_only_for_failed_and_cancelled_jobs() -> None:
    assert allowed_sources(Action.RETRY) == {FAILED, CANCELLED}


def test_cancel_is_allowed_only_for_pending_jobs() -> None:
    assert allowed_sources(Action.CANCEL) == {PENDING}


def test_delete_is_allowed_for_every_status_but_processing() -> None:
    assert allowed_sources(Action.DELETE) == set(JobStatus) - {PROCESSING}


@pytest.mark.parametrize(("action", "status"), ALLOWED_ACTIONS, ids=map(_pair_id, ALLOWED_ACTIONS))
def test_check_action_lets_an_allowed_action_through(action: Action, status: JobStatus) -> None:
    assert check_action(action, status) is None


@pytest.mark.parametrize(("action", "status"), REFUSED_ACTIONS, ids=map(_pair_id, REFUSED_ACTIONS))
def test_check_action_refuses_an_action_the_status_does_not_allow(
    action: Action, status: JobStatus
) -> None:
    with pytest.raises(InvalidTransitionError):
        check_action(action, status)


def test_cancel_is_refused_for_a_processing_job() -> None:
    with pytest.raises(InvalidTransitionError):
        check_action(Action.CANCEL, PROCESSING)


def test_retry_is_refused_for_a_processing_job() -> None:
    with pytest.raises(InvalidTransitionError):
        check_action(Action.RETRY, PROCESSING)


def test_delete_is_refused_for_a_processing_job() -> None:
    with pytest.raises(InvalidTransitionError):
        check_action(Action.DELETE, PROCESSING)


@pytest.mark.parametrize(
    ("action", "status", "message"),
    [
        (
            Action.RETRY,
            PROCESSING,
            "Only failed or cancelled jobs can be retried; this job is processing",
        ),
        (Action.CANCEL, COMPLETED, "Only pending jobs can be cancelled; this job is completed"),
        (
            Action.DELETE,
            PROCESSING,
            "A job cannot be deleted while it is processing; this job is processing",
        ),
    ],
    ids=["retry", "cancel", "delete"],
)
def test_a_refused_action_says_which_jobs_allow_it_and_what_this_one_is(
    action: Action, status: JobStatus, message: str
) -> None:
    with pytest.raises(InvalidTransitionError) as refusal:
        check_action(action, status)

    assert str(refusal.value) == message


@pytest.mark.parametrize(("action", "status"), REFUSED_ACTIONS, ids=map(_pair_id, REFUSED_ACTIONS))
def test_every_action_refusal_is_a_plain_sentence_naming_the_status(
    action: Action, status: JobStatus
) -> None:
    with pytest.raises(InvalidTransitionError) as refusal:
        check_action(action, status)

    message = str(refusal.value)
    assert message[0].isupper()
    assert message.endswith(f"this job is {status.value}")
    assert "JobStatus" not in message
    assert "Action." not in message


def test_retry_and_cancel_land_where_the_design_says_and_delete_removes_the_job() -> None:
    assert TARGET == {Action.RETRY: PENDING, Action.CANCEL: CANCELLED, Action.DELETE: None}


@pytest.mark.parametrize("action", [Action.RETRY, Action.CANCEL])
def test_an_operator_action_agrees_with_the_event_of_the_same_name(action: Action) -> None:
    event = Event(action.value)
    sources_by_event = {status for status, ev in TRANSITIONS if ev is event}

    assert allowed_sources(action) == sources_by_event
    for status in sources_by_event:
        assert transition(status, event) is TARGET[action]


def test_delete_is_an_action_and_not_a_state_machine_event() -> None:
    assert "delete" not in {event.value for event in Event}
