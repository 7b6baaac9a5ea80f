"""Send slots, provider pauses and circuits shared through the database, on every backend."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.sql_provider_store import SqlProviderStore
from commq.adapters.store.tables import audit_events
from commq.domain.circuit import Circuit, CircuitPolicy, CircuitState, Signal

from .support import count_rows

TENTH = timedelta(milliseconds=100)
HORIZON = timedelta(seconds=1)


@pytest.fixture
def store(store_engine: AsyncEngine) -> SqlProviderStore:
    return SqlProviderStore(store_engine)


async def test_the_first_reservation_starts_now_and_the_next_follows_it(
    store: SqlProviderStore,
) -> None:
    second, horizon = timedelta(seconds=1), timedelta(seconds=10)
    first = await store.reserve_slots("sendgrid", second, 3, horizon)
    then = await store.reserve_slots("sendgrid", second, 2, horizon)
    assert (first.count, then.count) == (3, 2)
    assert abs(first.first_at - first.now) < 0.05
    # Three slots a second apart were taken: the next is the fourth, 3 s on (seconds,
    # not tenths, so a busy machine's pause between the calls cannot pass them).
    assert then.first_at == pytest.approx(first.first_at + 3)


async def test_a_reservation_beyond_the_horizon_is_refused_with_the_wait(
    store: SqlProviderStore,
) -> None:
    second, horizon = timedelta(seconds=1), timedelta(seconds=10)
    await store.reserve_slots("twilio", second, 15, horizon)  # 15 s of slots
    refused = await store.reserve_slots("twilio", second, 1, horizon)
    assert refused.count == 0
    # The first free slot is 15 s away: a reservation fits again in 5 s, less the
    # time between the two calls (seconds leave room for a busy machine).
    assert 3 < refused.first_at - refused.now <= 5


async def test_providers_have_slots_of_their_own(store: SqlProviderStore) -> None:
    await store.reserve_slots("sendgrid", TENTH, 9, HORIZON)
    other = await store.reserve_slots("twilio", TENTH, 1, HORIZON)
    assert other.count == 1 and other.first_at - other.now < 0.05


async def test_concurrent_reservations_never_share_a_slot(store_engine: AsyncEngine) -> None:
    stores = [SqlProviderStore(store_engine) for _ in range(4)]

    async def reserve(store: SqlProviderStore) -> float:
        grant = await store.reserve_slots("sendgrid", TENTH, 1, timedelta(seconds=10))
        assert grant.count == 1
        return grant.first_at

    slots = sorted(await asyncio.gather(*(reserve(s) for s in stores * 5)))
    # 20 one-slot reservations at once: 20 distinct slots, a tenth of a second apart.
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert gaps == pytest.approx([0.1] * 19)


async def test_a_pause_delays_every_slot_until_it_ends(store: SqlProviderStore) -> None:
    # A minute's pause: the checks below hold however slowly a busy machine runs them.
    await store.pause_provider("sendgrid", timedelta(seconds=60))
    await store.pause_provider("sendgrid", timedelta(seconds=10))  # a shorter pause does not win
    paused = await store.paused_providers()
    assert set(paused) == {"sendgrid"}
    assert timedelta(seconds=50) < paused["sendgrid"] <= timedelta(seconds=60)
    grant = await store.reserve_slots("sendgrid", TENTH, 1, timedelta(minutes=2))
    assert grant.count == 1 and 50 < grant.first_at - grant.now <= 60


async def test_circuits_open_after_the_threshold_and_audit_each_change(
    store: SqlProviderStore, store_engine: AsyncEngine
) -> None:
    policy = CircuitPolicy(threshold=3, cooldown=timedelta(seconds=30))

    def fail(circuit: Circuit, now: datetime) -> Circuit:
        return policy.after(circuit, Signal.FAILURE, now)

    results = await asyncio.gather(
        *(store.change_circuit("sendgrid", "*", fail, "worker-a", None) for _ in range(5))
    )
    assert sorted(c.failures for c in results) == [1, 2, 3, 4, 5]
    reading = await store.read_circuits()
    [circuit] = reading.circuits
    assert circuit.state is CircuitState.OPEN and circuit.failures == 5
    assert circuit.opened_at is not None and circuit.opened_at <= reading.now
    # Exactly one change of state, so exactly one audit event, by the worker as "system".
    assert await count_rows(store_engine, audit_events, action="circuit.open", role="system") == 1


async def test_a_change_that_changes_nothing_writes_no_audit_event(
    store: SqlProviderStore, store_engine: AsyncEngine
) -> None:
    policy = CircuitPolicy()
    await store.change_circuit(
        "smtp", "acme", lambda c, now: policy.after(c, Signal.SUCCESS, now), "w", None
    )
    assert await count_rows(store_engine, audit_events) == 0
    [circuit] = (await store.read_circuits()).circuits
    assert (circuit.provider, circuit.scope, circuit.state) == ("smtp", "acme", CircuitState.CLOSED)
