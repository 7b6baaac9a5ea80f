"""Circuits and provider pauses are read from the store at most once per refresh_every,
however many sends ask, and read again once that has passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from commq.application.circuits import Admission, CircuitBreaker
from commq.application.ports import CircuitChange, CircuitReading, SlotGrant
from commq.application.ratelimits import SendSlots, SlotSettings
from commq.domain.circuit import ANY_BUSINESS, Circuit, CircuitPolicy
from commq.domain.outcomes import SendResult


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """Circuits and pauses kept in memory; counts the reads."""

    def __init__(self, paused: dict[str, timedelta] | None = None) -> None:
        self.circuit_reads = 0
        self.pause_reads = 0
        self.paused = paused or {}

    async def read_circuits(self) -> CircuitReading:
        self.circuit_reads += 1
        return CircuitReading([], datetime.now(UTC))

    async def change_circuit(
        self, provider: str, scope: str, change: CircuitChange, actor: str, job_id: str | None
    ) -> Circuit:
        return change(Circuit(provider, scope), datetime.now(UTC))

    async def paused_providers(self) -> dict[str, timedelta]:
        self.pause_reads += 1
        return dict(self.paused)

    async def reserve_slots(
        self, provider: str, interval: timedelta, count: int, horizon: timedelta
    ) -> SlotGrant:
        raise AssertionError("no provider here has a rate limit")

    async def pause_provider(self, provider: str, delay: timedelta) -> None:
        self.paused[provider] = delay

    async def clock(self) -> float:
        return 0.0


async def test_sends_share_one_circuit_read_until_it_is_stale() -> None:
    store, ticks = CountingStore(), Ticks()
    circuits = CircuitBreaker(
        store, CircuitPolicy(), "w", ["fast"], refresh_every=0.25, monotonic=ticks
    )
    for _ in range(50):
        assert await circuits.admit("fast", ANY_BUSINESS) is Admission.SEND
        await circuits.record("fast", ANY_BUSINESS, SendResult.ok("fast"), Admission.SEND)
    assert store.circuit_reads == 1 and not circuits.stale()
    ticks.now += 0.25
    assert circuits.stale()
    await circuits.admit("fast", ANY_BUSINESS)
    assert store.circuit_reads == 2 and not circuits.stale()


async def test_sends_share_one_pause_read_and_a_paused_provider_still_waits() -> None:
    store, ticks = CountingStore(), Ticks()
    slots = SendSlots(store, {}, SlotSettings(refresh_every=0.5), monotonic=ticks)
    for _ in range(50):
        assert await slots.acquire("fast") is None
    assert store.pause_reads == 1 and not slots.stale()
    store.paused["fast"] = timedelta(seconds=30)  # another worker was told 429
    ticks.now += 0.5
    assert slots.stale()
    assert await slots.acquire("fast") == timedelta(seconds=30)  # beyond max_wait: given back
    assert store.pause_reads == 2
    assert slots.paused_for("fast") == timedelta(seconds=30)
    assert slots.paused_for("other") == timedelta(0)
