"""Send slots: every send to a rate-limited provider waits for a slot of its own.

Slots come from the database (RateStore) in small batches, one interval apart
across all workers, so the limit holds however many workers share it and a
worker makes a round trip per batch, not per send. A provider's own 429 pauses
it for everyone. A job whose wait would be long is not held: the caller gets
the delay back and gives the job back to the queue for that long.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from commq.application.ports import RateStore
from commq.domain.ratelimit import RateLimit

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SlotSettings:
    """How slots are taken."""

    #: One reservation takes the slots of this much time (at least one slot).
    batch_window: timedelta = timedelta(seconds=0.25)
    #: A reservation is refused when its first slot would be further away than this.
    horizon: timedelta = timedelta(seconds=1)
    #: A job waits for a slot in the worker up to this long; longer waits give it back.
    max_wait: timedelta = timedelta(seconds=10)
    #: How often the shared pauses are read again.
    refresh_every: float = 0.5
    #: Slots are spaced this fraction wider than the limit asks, so that sends a few
    #: milliseconds late (a busy event loop, the network) still never exceed it.
    headroom: float = 0.03
    #: A slot woken up later than this (or a quarter interval, if less) is not used.
    max_lateness: timedelta = timedelta(milliseconds=10)


class ClockSync:
    """Maps database-clock times to this process's monotonic clock.

    Every reservation is a sample: the database's ``now`` happened somewhere
    between sending the request and reading the answer. The sample with the
    shortest round trip (among recent ones) bounds the error best, and using
    one offset for every slot keeps slots from different reservations (and
    workers) evenly spaced.
    """

    #: A best sample older than this is replaced by the next one (clocks drift).
    MAX_AGE = 10.0

    #: Exchanges made to learn the offset before the first reservation.
    FIRST_SAMPLES = 3

    def __init__(self) -> None:
        self._offset = 0.0
        self._round_trip = float("inf")
        self._taken_at = float("-inf")

    @property
    def synced(self) -> bool:
        """Whether any sample was taken yet."""
        return self._round_trip != float("inf")

    def observe(self, db_now: float, sent: float, received: float) -> None:
        """Learn from one exchange: the database said ``db_now`` between sent and received."""
        round_trip = received - sent
        if round_trip <= self._round_trip or received - self._taken_at > self.MAX_AGE:
            self._offset = db_now - (sent + received) / 2
            self._round_trip, self._taken_at = round_trip, received

    def local(self, db_time: float) -> float:
        """The monotonic time of a database-clock time."""
        return db_time - self._offset


@dataclass
class _Queue:
    """One provider's reserved slots (monotonic times) and the jobs waiting for them."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    slots: deque[float] = field(default_factory=deque)
    waiting: int = 0

    def take(self, now: float, lateness: float) -> float | None:
        # A slot missed by more than ``lateness`` is dropped: used that late it would
        # crowd the next one (perhaps another worker's).
        while self.slots and self.slots[0] < now - lateness:
            self.slots.popleft()
        return self.slots.popleft() if self.slots else None


class SendSlots:
    """Per-provider send slots shared through the database, and provider pauses."""

    def __init__(
        self,
        store: RateStore,
        limits: Mapping[str, RateLimit],
        settings: SlotSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._limits = dict(limits)
        self._settings = settings or SlotSettings()
        self._monotonic = monotonic
        self._sleep = sleep
        self._queues: dict[str, _Queue] = {}
        self._clock = ClockSync()
        self._pauses: dict[str, float] = {}
        self._read_at = float("-inf")
        self._reading = asyncio.Lock()

    def stale(self) -> bool:
        """Whether the copy is older than ``refresh_every`` (``refresh`` would read)."""
        return self._monotonic() - self._read_at >= self._settings.refresh_every

    async def refresh(self, force: bool = False) -> None:
        """Read the shared pauses again if the copy is older than ``refresh_every``."""
        if not force and not self.stale():
            return
        # Single flight: the sends that found the copy stale together share one read.
        async with self._reading:
            if not force and not self.stale():
                return
            now = self._monotonic()
            pauses = await self._store.paused_providers()
            self._pauses = {p: now + left.total_seconds() for p, left in pauses.items()}
            self._read_at = now

    def paused_for(self, provider: str) -> timedelta:
        """How long ``provider`` is still paused by its own rate limit (zero: not paused)."""
        return timedelta(seconds=self._paused_seconds(provider))

    def _paused_seconds(self, provider: str) -> float:
        until = self._pauses.get(provider)
        return 0.0 if until is None else max(0.0, until - self._monotonic())

    async def pause(self, provider: str, delay: timedelta) -> None:
        """The provider asked us to wait (429): nobody sends to it for ``delay``."""
        await self._store.pause_provider(provider, delay)
        self._pauses[provider] = max(
            self._pauses.get(provider, 0.0), self._monotonic() + delay.total_seconds()
        )
        if provider in self._queues:
            self._queues[provider].slots.clear()

    async def acquire(self, provider: str) -> timedelta | None:
        """Wait for a slot of ``provider``: None when the send may go now.

        Returns the delay instead when the wait would exceed ``max_wait``.
        """
        if self.stale():  # every send asks: no coroutine when the copy is fresh
            await self.refresh()
        limit = self._limits.get(provider)
        if limit is None:
            if not self._paused_seconds(provider):
                return None
            return await self._sit_out_pause(provider)
        queue = self._queues.setdefault(provider, _Queue())
        late = self._lateness(limit)
        while True:
            slot = await self._queued_slot(provider, limit, queue)
            if isinstance(slot, timedelta):
                return slot
            await self._sleep(max(0.0, slot - self._monotonic()))
            # Woken too late (a busy event loop), the send would crowd the next slot.
            if self._monotonic() - slot <= late:
                return None

    async def _queued_slot(
        self, provider: str, limit: RateLimit, queue: _Queue
    ) -> float | timedelta:
        queue.waiting += 1
        try:
            async with queue.lock:
                return await self._next_slot(provider, limit, queue)
        finally:
            queue.waiting -= 1

    async def _sit_out_pause(self, provider: str) -> timedelta | None:
        paused = self.paused_for(provider)
        if paused > self._settings.max_wait:
            return paused
        if paused > timedelta(0):
            await self._sleep(paused.total_seconds())
        return None

    def _spacing(self, limit: RateLimit) -> timedelta:
        return limit.interval * (1 + self._settings.headroom)

    def _lateness(self, limit: RateLimit) -> float:
        quarter = self._spacing(limit).total_seconds() / 4
        return min(quarter, self._settings.max_lateness.total_seconds())

    async def _next_slot(self, provider: str, limit: RateLimit, queue: _Queue) -> float | timedelta:
        spacing = self._spacing(limit)
        interval = spacing.total_seconds()
        if not self._clock.synced:
            await self._sync_clock()
        while (slot := queue.take(self._monotonic(), self._lateness(limit))) is None:
            count = min(queue.waiting, limit.batch(self._settings.batch_window))
            sent = self._monotonic()
            grant = await self._store.reserve_slots(
                provider, spacing, count, self._settings.horizon
            )
            self._clock.observe(grant.now, sent, self._monotonic())
            first = self._clock.local(grant.first_at)
            if grant.count:
                queue.slots.extend(first + i * interval for i in range(grant.count))
                continue
            wait = max(first - self._monotonic(), 0.001)
            if wait > self._settings.max_wait.total_seconds():
                return timedelta(seconds=wait)
            await self._sleep(wait)
        return slot

    async def _sync_clock(self) -> None:
        # The first exchange of a new connection is slow and lopsided; a few more
        # give a round trip short enough to place slots to the millisecond.
        for _ in range(ClockSync.FIRST_SAMPLES):
            sent = self._monotonic()
            db_now = await self._store.clock()
            self._clock.observe(db_now, sent, self._monotonic())
