"""Circuit breakers: when a provider is down, stop sending to it until a probe says it is back.

A circuit belongs to a provider, for every business (scope ``"*"``) or for one
business whose credentials differ. Only failures blamed on the provider count;
answers about the message never open a circuit. Everything here is pure: the
caller passes the database's "now" and writes the returned circuit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from commq.domain.outcomes import Blame, SendOutcome, SendResult

#: The scope of a circuit shared by every business.
ANY_BUSINESS = "*"

_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)


class CircuitState(StrEnum):
    """Whether a provider is sent to."""

    #: Healthy: every job is sent.
    CLOSED = "closed"
    #: Down: no job is sent until the cool-down ends.
    OPEN = "open"
    #: Cool-down over: one probe is in flight (or may start) to see whether it is back.
    HALF_OPEN = "half_open"


class Signal(StrEnum):
    """What one send said about the provider's health."""

    #: The provider took a message.
    SUCCESS = "success"
    #: The provider failed (5xx, connection refused, SMTP 421 …).
    FAILURE = "failure"
    #: The provider refused our configuration (401/403): no point in trying again soon.
    FAULT = "fault"
    #: An answer about the message or a rate limit: nothing learnt about the provider.
    NEUTRAL = "neutral"


def signal_of(result: SendResult) -> Signal:
    """Classify a send result for the circuit (blame decides, not the outcome alone)."""
    if result.outcome is SendOutcome.OK:
        return Signal.SUCCESS
    if result.blame is not Blame.PROVIDER:
        return Signal.NEUTRAL
    if result.outcome is SendOutcome.PERMANENT:
        return Signal.FAULT
    return Signal.FAILURE


@dataclass(frozen=True, slots=True)
class Circuit:
    """One provider's breaker, for one scope (``"*"`` or a business id)."""

    provider: str
    scope: str = ANY_BUSINESS
    state: CircuitState = CircuitState.CLOSED
    #: Consecutive provider failures since the last success.
    failures: int = 0
    opened_at: datetime | None = None
    #: When the half-open probe in flight started (None: none in flight).
    probe_started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    """When circuits open and when they probe."""

    #: Consecutive provider failures that open a closed circuit.
    threshold: int = 5
    #: How long an open circuit waits before one half-open probe.
    cooldown: timedelta = timedelta(seconds=30)
    #: A probe that has not reported for this long is presumed lost; another may start.
    probe_timeout: timedelta = timedelta(seconds=60)

    def after(self, circuit: Circuit, signal: Signal, now: datetime) -> Circuit:
        """The circuit after one send's ``signal`` (sends that were probes or not)."""
        if signal is Signal.SUCCESS:
            return replace(circuit, state=CircuitState.CLOSED, failures=0, probe_started_at=None)
        if signal is Signal.NEUTRAL:
            # A probe answered about the message: let another probe decide.
            return replace(circuit, probe_started_at=None)
        failures = circuit.failures + 1
        if circuit.state is CircuitState.OPEN:
            return replace(circuit, failures=failures)
        opens = (
            signal is Signal.FAULT
            or circuit.state is CircuitState.HALF_OPEN
            or failures >= self.threshold
        )
        if not opens:
            return replace(circuit, failures=failures)
        return Circuit(circuit.provider, circuit.scope, CircuitState.OPEN, failures, now)

    def probe_at(self, circuit: Circuit) -> datetime | None:
        """When a probe may start (None: the circuit is closed, send freely)."""
        if circuit.state is CircuitState.CLOSED:
            return None
        if circuit.state is CircuitState.HALF_OPEN:
            # No probe in flight (the last one answered about its message): one may start now.
            if circuit.probe_started_at is None:
                return _LONG_AGO
            return circuit.probe_started_at + self.probe_timeout
        return (circuit.opened_at or _LONG_AGO) + self.cooldown

    def start_probe(self, circuit: Circuit, now: datetime) -> Circuit | None:
        """The circuit with a probe started by the caller, or None when no probe is due."""
        due = self.probe_at(circuit)
        if due is None or due > now:
            return None
        return replace(circuit, state=CircuitState.HALF_OPEN, probe_started_at=now)


def transition_action(before: Circuit, after: Circuit) -> str | None:
    """The audit action of a state change (``circuit.open`` …), None when the state held."""
    if before.state is after.state:
        return None
    return {
        CircuitState.OPEN: "circuit.open",
        CircuitState.HALF_OPEN: "circuit.half_open",
        CircuitState.CLOSED: "circuit.close",
    }[after.state]
