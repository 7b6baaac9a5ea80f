"""Circuit breakers as a worker uses them: may this provider be sent to, and what did it say.

Every worker keeps a copy of the stored circuits, read again at most every
``refresh_every`` seconds, so deciding whether to send costs no round trip.
Writes happen only when a send says something new: a provider failure, the
first success after failures, or a probe's answer. The half-open probe is
taken with a compare-and-set in the store, so across all workers exactly one
job probes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from commq.application.ports import CircuitStore
from commq.domain.circuit import (
    ANY_BUSINESS,
    Circuit,
    CircuitPolicy,
    CircuitState,
    Signal,
    signal_of,
    transition_action,
)
from commq.domain.outcomes import SendResult

log = logging.getLogger("commq.worker")


class Admission(StrEnum):
    """Whether one job may be sent through a provider."""

    #: The circuit is closed.
    SEND = "send"
    #: The circuit is half-open and this job is its one probe.
    PROBE = "probe"
    #: The circuit is open (or another job is probing): do not send.
    SKIP = "skip"


class _ProbeStart:
    """A circuit change that starts the probe when one is due, remembering whether it did."""

    def __init__(self, policy: CircuitPolicy) -> None:
        self._policy = policy
        self.started = False

    def __call__(self, circuit: Circuit, now: datetime) -> Circuit:
        probing = self._policy.start_probe(circuit, now)
        self.started = probing is not None
        return probing or circuit


class CircuitBreaker:
    """Admits sends per (provider, scope) and feeds their results back to the shared circuits.

    ``scoped`` names the providers whose circuits are per business (their
    credentials differ per business); the others share one circuit (``"*"``).
    """

    def __init__(
        self,
        store: CircuitStore,
        policy: CircuitPolicy,
        actor: str,
        providers: Iterable[str] = (),
        scoped: frozenset[str] = frozenset(),
        refresh_every: float = 0.25,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.policy = policy
        self._actor = actor
        self._providers = list(dict.fromkeys(providers))
        self._scoped = scoped
        self._refresh_every = refresh_every
        self._monotonic = monotonic
        self._circuits: dict[tuple[str, str], Circuit] = {}
        self._closed: dict[tuple[str, str], Circuit] = {}
        self._read_now: datetime | None = None
        self._read_at = float("-inf")
        self._reading = asyncio.Lock()

    def scope_of(self, provider: str, business_id: str) -> str:
        """The circuit scope a job of ``business_id`` uses at ``provider``."""
        return business_id if provider in self._scoped else ANY_BUSINESS

    def stale(self) -> bool:
        """Whether the copy is older than ``refresh_every`` (``refresh`` would read)."""
        return self._monotonic() - self._read_at >= self._refresh_every

    async def refresh(self, force: bool = False) -> None:
        """Read the shared circuits again if the copy is older than ``refresh_every``."""
        if not force and not self.stale():
            return
        # Single flight: the sends that found the copy stale together share one read.
        async with self._reading:
            if not force and not self.stale():
                return
            reading = await self._store.read_circuits()
            self._circuits = {(c.provider, c.scope): c for c in reading.circuits}
            self._read_now, self._read_at = reading.now, self._monotonic()

    def circuit(self, provider: str, scope: str = ANY_BUSINESS) -> Circuit:
        """The known state of one circuit (closed when never stored)."""
        key = (provider, scope)
        known = self._circuits.get(key) or self._closed.get(key)
        if known is None:
            # Asked for every send: one closed Circuit per key, not one per call.
            known = self._closed[key] = Circuit(provider, scope)
        return known

    def wait(self, provider: str, scope: str = ANY_BUSINESS) -> timedelta | None:
        """How long until a probe may start (zero: now); None while the circuit is closed.

        Never more than the cool-down: a probe in flight usually answers sooner.
        """
        due = self.policy.probe_at(self.circuit(provider, scope))
        if due is None:
            return None
        left = due - self._db_now()
        return max(timedelta(0), min(left, self.policy.cooldown))

    async def admit(self, provider: str, scope: str, job_id: str | None = None) -> Admission:
        """SEND when closed; PROBE for the one job that probes a circuit due for it; else SKIP."""
        if self.stale():  # every send asks: no coroutine when the copy is fresh
            await self.refresh()
        wait = self.wait(provider, scope)
        if wait is None:
            return Admission.SEND
        if wait > timedelta(0):
            return Admission.SKIP
        probe = _ProbeStart(self.policy)
        changed = await self._store.change_circuit(provider, scope, probe, self._actor, job_id)
        self._circuits[(provider, scope)] = changed
        return Admission.PROBE if probe.started else Admission.SKIP

    async def record(
        self,
        provider: str,
        scope: str,
        result: SendResult,
        admission: Admission,
        job_id: str | None = None,
    ) -> None:
        """Feed one send's result back; writes only when it changes what the circuit knows.

        A circuit it opens is logged as a warning with the answer that opened it.
        """
        if self.stale():
            await self.refresh()
        signal = signal_of(result)
        known = self.circuit(provider, scope)
        if admission is not Admission.PROBE and _changes_nothing(known, signal):
            return

        opened = False

        def change(circuit: Circuit, now: datetime) -> Circuit:
            nonlocal opened
            after = self.policy.after(circuit, signal, now)
            opened = transition_action(circuit, after) == "circuit.open"
            return after

        changed = await self._store.change_circuit(provider, scope, change, self._actor, job_id)
        self._circuits[(provider, scope)] = changed
        if opened:
            # The operator's first clue: the answer that opened it says what to fix
            # (a wrong setting reads differently from an outage).
            log.warning("%s circuit opened (scope %s): %s", provider, scope, result.error)

    async def abandon_probe(self, provider: str, scope: str, job_id: str | None = None) -> None:
        """The probe this worker took will not be sent: let another job probe."""

        def release(circuit: Circuit, now: datetime) -> Circuit:
            return self.policy.after(circuit, Signal.NEUTRAL, now)

        changed = await self._store.change_circuit(provider, scope, release, self._actor, job_id)
        self._circuits[(provider, scope)] = changed

    async def snapshot(self, business_id: str | None = None) -> dict[str, dict[str, Any]]:
        """The circuits of every configured provider as /stats shows them (read afresh)."""
        return await circuit_snapshot(self._store, self._providers, business_id)

    def _db_now(self) -> datetime:
        # The database's clock, estimated from the last read; circuits are only
        # known after a read, so there always was one when this is asked.
        assert self._read_now is not None, "refresh() comes before any circuit is known"
        return self._read_now + timedelta(seconds=self._monotonic() - self._read_at)


def _changes_nothing(known: Circuit, signal: Signal) -> bool:
    if signal is Signal.NEUTRAL:
        return True
    return signal is Signal.SUCCESS and known.state is CircuitState.CLOSED and known.failures == 0


async def circuit_snapshot(
    store: CircuitStore, providers: Iterable[str], business_id: str | None = None
) -> dict[str, dict[str, Any]]:
    """``{"sendgrid": {"state": "open", "openedAt": "…Z", "failures": 7}, …}``.

    Every provider in ``providers`` appears (closed when never stored); a
    business sees its own circuit of a provider where it has one, else the
    shared one.
    """
    reading = await store.read_circuits()
    shown = {p: _shown(Circuit(p)) for p in providers}
    shared = [c for c in reading.circuits if c.scope == ANY_BUSINESS]
    own = [c for c in reading.circuits if business_id is not None and c.scope == business_id]
    for circuit in [*shared, *own]:
        shown[circuit.provider] = _shown(circuit)
    return shown


def _shown(circuit: Circuit) -> dict[str, Any]:
    opened = circuit.opened_at
    return {
        "state": circuit.state.value,
        "openedAt": None if opened is None else opened.isoformat().replace("+00:00", "Z"),
        "failures": circuit.failures,
    }
