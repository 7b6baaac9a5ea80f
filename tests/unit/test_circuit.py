"""Circuit breaker rules: when a circuit opens, probes and closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commq.domain.circuit import (
    Circuit,
    CircuitPolicy,
    CircuitState,
    Signal,
    signal_of,
    transition_action,
)
from commq.domain.outcomes import Blame, SendOutcome, SendResult

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
POLICY = CircuitPolicy(threshold=3, cooldown=timedelta(seconds=30))


def _after(circuit: Circuit, *signals: Signal, at: datetime = T0) -> Circuit:
    for signal in signals:
        circuit = POLICY.after(circuit, signal, at)
    return circuit


@pytest.mark.parametrize(
    ("result", "signal"),
    [
        (SendResult.ok("sendgrid"), Signal.SUCCESS),
        (SendResult(SendOutcome.TRANSIENT, "sendgrid", blame=Blame.PROVIDER), Signal.FAILURE),
        (SendResult(SendOutcome.PERMANENT, "sendgrid", blame=Blame.PROVIDER), Signal.FAULT),
        (SendResult(SendOutcome.PERMANENT, "twilio", error="21211"), Signal.NEUTRAL),
        (SendResult(SendOutcome.TRANSIENT, "smtp", error="452 4.2.2 mailbox full"), Signal.NEUTRAL),
        (SendResult(SendOutcome.TRANSIENT, "sendgrid", blame=Blame.RATE_LIMIT), Signal.NEUTRAL),
    ],
)
def test_only_answers_blamed_on_the_provider_count_against_it(
    result: SendResult, signal: Signal
) -> None:
    assert signal_of(result) is signal


def test_a_circuit_opens_after_threshold_consecutive_provider_failures() -> None:
    almost = _after(Circuit("sendgrid"), Signal.FAILURE, Signal.FAILURE)
    assert almost.state is CircuitState.CLOSED and almost.failures == 2
    opened = _after(almost, Signal.FAILURE)
    assert (opened.state, opened.opened_at, opened.failures) == (CircuitState.OPEN, T0, 3)
    assert transition_action(almost, opened) == "circuit.open"


def test_a_success_resets_the_count_and_message_answers_do_not() -> None:
    circuit = _after(Circuit("sendgrid"), Signal.FAILURE, Signal.FAILURE, Signal.NEUTRAL)
    assert circuit.failures == 2
    assert _after(circuit, Signal.SUCCESS).failures == 0
    assert _after(circuit, Signal.SUCCESS, Signal.FAILURE).state is CircuitState.CLOSED


def test_a_provider_fault_opens_the_circuit_at_once() -> None:
    assert _after(Circuit("sendgrid"), Signal.FAULT).state is CircuitState.OPEN


def test_one_probe_may_start_after_the_cooldown() -> None:
    opened = _after(Circuit("sendgrid"), Signal.FAULT)
    assert POLICY.probe_at(opened) == T0 + timedelta(seconds=30)
    assert POLICY.start_probe(opened, T0 + timedelta(seconds=29)) is None
    probing = POLICY.start_probe(opened, T0 + timedelta(seconds=30))
    assert probing is not None and probing.state is CircuitState.HALF_OPEN
    assert transition_action(opened, probing) == "circuit.half_open"
    # A second worker asking at the same moment finds the probe taken.
    assert POLICY.start_probe(probing, T0 + timedelta(seconds=30)) is None


def test_a_probe_that_never_reports_is_replaced_after_the_probe_timeout() -> None:
    probing = Circuit("sendgrid", state=CircuitState.HALF_OPEN, opened_at=T0, probe_started_at=T0)
    later = T0 + POLICY.probe_timeout
    assert POLICY.start_probe(probing, later - timedelta(seconds=1)) is None
    assert POLICY.start_probe(probing, later) is not None


def test_the_probes_answer_closes_or_reopens_the_circuit() -> None:
    probing = Circuit("sendgrid", state=CircuitState.HALF_OPEN, opened_at=T0, probe_started_at=T0)
    closed = _after(probing, Signal.SUCCESS)
    assert (closed.state, closed.failures) == (CircuitState.CLOSED, 0)
    assert transition_action(probing, closed) == "circuit.close"
    later = T0 + timedelta(seconds=31)
    reopened = _after(probing, Signal.FAILURE, at=later)
    assert (reopened.state, reopened.opened_at) == (CircuitState.OPEN, later)


def test_a_probe_answered_about_its_message_lets_another_probe_go() -> None:
    probing = Circuit("sendgrid", state=CircuitState.HALF_OPEN, opened_at=T0, probe_started_at=T0)
    released = _after(probing, Signal.NEUTRAL)
    assert released.state is CircuitState.HALF_OPEN and released.probe_started_at is None
    assert POLICY.start_probe(released, T0) is not None
