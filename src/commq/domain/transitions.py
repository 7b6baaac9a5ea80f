"""Which operator actions each status allows (DESIGN §2).

The store applies a change as a compare-and-set on the job's current status;
the allowed source statuses come from here, so the rule lives in one place.
"""

from __future__ import annotations

from enum import StrEnum

from commq.domain.errors import InvalidTransitionError
from commq.domain.jobs import JobStatus


class Action(StrEnum):
    """An operator's change to one job."""

    #: failed | cancelled -> pending, attempts reset, error cleared, due now.
    RETRY = "retry"
    #: pending -> cancelled.
    CANCEL = "cancel"
    #: any status but processing -> gone.
    DELETE = "delete"


_SOURCES: dict[Action, frozenset[JobStatus]] = {
    Action.RETRY: frozenset({JobStatus.FAILED, JobStatus.CANCELLED}),
    Action.CANCEL: frozenset({JobStatus.PENDING}),
    Action.DELETE: frozenset(set(JobStatus) - {JobStatus.PROCESSING}),
}

_REFUSALS: dict[Action, str] = {
    Action.RETRY: "Only failed or cancelled jobs can be retried",
    Action.CANCEL: "Only pending jobs can be cancelled",
    Action.DELETE: "A job cannot be deleted while it is processing",
}

#: Where a successful action leaves the job (None: the job is removed).
TARGET: dict[Action, JobStatus | None] = {
    Action.RETRY: JobStatus.PENDING,
    Action.CANCEL: JobStatus.CANCELLED,
    Action.DELETE: None,
}


def allowed_sources(action: Action) -> frozenset[JobStatus]:
    """The statuses from which ``action`` may be applied."""
    return _SOURCES[action]


def check_action(action: Action, status: JobStatus) -> None:
    """Raise InvalidTransitionError unless ``action`` is allowed from ``status``."""
    if status not in _SOURCES[action]:
        raise InvalidTransitionError(f"{_REFUSALS[action]}; this job is {status.value}")


class Event(StrEnum):
    """Everything that can happen to a job, operator actions included."""

    #: A worker takes a due pending job under a lease.
    CLAIM = "claim"
    #: The provider took the message.
    SUCCEED = "succeed"
    #: A transient failure with attempts left: due again after a backoff.
    RETRY_LATER = "retry_later"
    #: A permanent or ambiguous failure, or attempts spent.
    GIVE_UP = "give_up"
    #: The lease expired before the worker reported.
    LOSE_LEASE = "lose_lease"
    #: A stopping worker hands back a job it had not started sending.
    RELEASE = "release"
    RETRY = "retry"
    CANCEL = "cancel"


_P, _R, _C, _F, _X = (
    JobStatus.PENDING,
    JobStatus.PROCESSING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)

#: The whole state machine of DESIGN §2; a pair not listed is refused.
TRANSITIONS: dict[tuple[JobStatus, Event], JobStatus] = {
    (_P, Event.CLAIM): _R,
    (_P, Event.CANCEL): _X,
    (_R, Event.SUCCEED): _C,
    (_R, Event.RETRY_LATER): _P,
    (_R, Event.GIVE_UP): _F,
    (_R, Event.LOSE_LEASE): _P,
    (_R, Event.RELEASE): _P,
    (_F, Event.RETRY): _P,
    (_X, Event.RETRY): _P,
}


def transition(status: JobStatus, event: Event) -> JobStatus:
    """The status after ``event``; raises InvalidTransitionError if it is not allowed."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransitionError(f"A {status.value} job does not allow {event.value}") from None
