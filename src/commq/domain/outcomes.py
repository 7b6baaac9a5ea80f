"""What a sender reports, and what the queue decides to do about it.

Senders classify provider answers into a SendResult; ``decide`` turns a result
into the job's next state. Nothing here performs I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from commq.domain.jobs import AttemptOutcome, Channel, ErrorType, Job, JobStatus
from commq.domain.retry import RetryPolicy


class SendOutcome(StrEnum):
    """How a provider answered one send."""

    #: The provider took the message.
    OK = "ok"
    #: Worth retrying: timeouts before sending, 5xx, SMTP 4xx, 429.
    TRANSIENT = "transient"
    #: Retrying cannot help: bad recipient, rejected content.
    PERMANENT = "permanent"
    #: The request may have reached the provider: a retry could send twice.
    AMBIGUOUS = "ambiguous"


class Blame(StrEnum):
    """Whose problem a failed send was; only the message's own failures use up attempts."""

    #: The message itself (bad address, rejected content, a timeout on this send).
    MESSAGE = "message"
    #: The provider is down or misconfigured (5xx storms, 401/403, connection refused):
    #: the job waits (or fails over) without consuming an attempt.
    PROVIDER = "provider"
    #: The provider asked us to slow down (429): the job waits; no failover.
    RATE_LIMIT = "rate_limit"


@dataclass(frozen=True, slots=True)
class SendResult:
    """A sender's classified answer."""

    outcome: SendOutcome
    provider: str
    provider_message_id: str | None = None
    error: str | None = None
    #: The provider asked us to wait at least this long (Retry-After).
    retry_after: timedelta | None = None
    blame: Blame = Blame.MESSAGE
    #: The provider's own error code, when its answer named one (Twilio's ``21610``).
    #: Rules read it here, never in ``error``, whose text may quote anything.
    error_code: str | None = None

    @classmethod
    def ok(cls, provider: str, provider_message_id: str | None = None) -> SendResult:
        """The provider took the message."""
        return cls(SendOutcome.OK, provider, provider_message_id)


@dataclass(frozen=True, slots=True)
class Decision:
    """The job's next state after one attempt."""

    status: JobStatus
    attempt_outcome: AttemptOutcome
    error_type: ErrorType | None
    last_error: str | None
    #: For a retry: how long after the database's "now" the job is due again.
    retry_in: timedelta | None = None
    #: False when the provider, not the message, failed: the attempt is given back.
    counts_attempt: bool = True


_ATTEMPT_OUTCOME = {
    SendOutcome.OK: AttemptOutcome.SUCCEEDED,
    SendOutcome.TRANSIENT: AttemptOutcome.TRANSIENT_ERROR,
    SendOutcome.PERMANENT: AttemptOutcome.PERMANENT_ERROR,
    SendOutcome.AMBIGUOUS: AttemptOutcome.AMBIGUOUS_ERROR,
}


def decide(job: Job, result: SendResult, policy: RetryPolicy, jitter: float) -> Decision:
    """The next state of ``job`` (already claimed, so ``job.attempts`` counts this attempt).

    A failure blamed on the provider or a rate limit never fails the job and
    gives its attempt back (DESIGN §2: provider outages do not use up messages).

    Ambiguous e-mail and SMS are never retried on their own, so nobody receives
    a message twice; a webhook carries a stable id receivers can deduplicate
    on, so it is retried like a transient error.
    """
    attempt_outcome = _ATTEMPT_OUTCOME[result.outcome]
    if result.outcome is SendOutcome.OK:
        return Decision(JobStatus.COMPLETED, attempt_outcome, None, None)
    error_type = _error_type(result.outcome)
    if result.blame is not Blame.MESSAGE and result.outcome is not SendOutcome.AMBIGUOUS:
        # An outage or a rate limit is nobody's fault in the message: wait, keep attempts.
        delay = policy.backoff(max(job.attempts, 1), jitter, result.retry_after)
        return Decision(
            JobStatus.PENDING, attempt_outcome, ErrorType.TRANSIENT, result.error, delay, False
        )
    if _retryable(job, result.outcome) and job.attempts < job.max_attempts:
        delay = policy.backoff(job.attempts, jitter, result.retry_after)
        return Decision(JobStatus.PENDING, attempt_outcome, error_type, result.error, delay)
    return Decision(JobStatus.FAILED, attempt_outcome, error_type, result.error)


def _error_type(outcome: SendOutcome) -> ErrorType:
    if outcome is SendOutcome.PERMANENT:
        return ErrorType.PERMANENT
    if outcome is SendOutcome.AMBIGUOUS:
        return ErrorType.AMBIGUOUS
    return ErrorType.TRANSIENT


def _retryable(job: Job, outcome: SendOutcome) -> bool:
    if outcome is SendOutcome.TRANSIENT:
        return True
    return outcome is SendOutcome.AMBIGUOUS and job.channel is Channel.WEBHOOK
