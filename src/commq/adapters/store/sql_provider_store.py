"""Provider state every worker shares through the database: send slots, pauses, circuits.

Send slots: ``provider_rates.next_slot`` is the next free slot in epoch seconds
of the database clock. A reservation of n slots is one upsert that moves it
n intervals on, provided the first slot is near enough; so workers on many
machines hand out one evenly spaced sequence of slots, with one round trip per
batch. A provider's own 429 sets ``paused_until``, which no slot precedes.

Circuits: a change is a pure function applied to the row under a row lock
(PostgreSQL ``FOR UPDATE``; SQLite serialises writers anyway), so concurrent
failures from many workers count one by one, and each state change writes
exactly one audit event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import Float, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from commq.adapters.store.driver_calls import DriverStatement, fetch_each
from commq.adapters.store.engine import Dialect, Transactions
from commq.adapters.store.tables import (
    audit_events,
    circuits,
    compiled_per_dialect,
    db_now,
    provider_rates,
)
from commq.application.ports import CircuitChange, CircuitReading, SlotGrant
from commq.domain.circuit import ANY_BUSINESS, Circuit, CircuitState, transition_action
from commq.domain.jobs import new_job_id

#: The role recorded on audit events that a worker, not an operator, caused.
SYSTEM_ROLE = "system"

_r = provider_rates.c
_k = circuits.c


class db_epoch(FunctionElement[float]):
    """The database's current time in epoch seconds (fractional)."""

    type = Float()
    inherit_cache = True
    name = "db_epoch"


@compiles(db_epoch)
def _pg_epoch(element: db_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # clock_timestamp(), not the statement's start: a reservation may wait for the row
    # lock, and its slots must count from when it got it.
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_epoch, "sqlite")
def _sqlite_epoch(element: db_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


class greatest(FunctionElement[float]):
    """The largest of its arguments (GREATEST on PostgreSQL, scalar MAX on SQLite)."""

    type = Float()
    inherit_cache = True
    name = "greatest"


compiled_per_dialect(greatest, "GREATEST({})", "MAX({})")


class SqlProviderStore:
    """The RateStore and CircuitStore over SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)
        self._insert = postgresql.insert if self._tx.dialect == "postgresql" else sqlite.insert

    # ---- send slots and pauses

    async def reserve_slots(
        self, provider: str, interval: timedelta, count: int, horizon: timedelta
    ) -> SlotGrant:
        step = interval.total_seconds() * count
        now = db_epoch()
        first = greatest(_r.next_slot, now, _r.paused_until)
        statement = (
            self._insert(provider_rates)
            .values(provider=provider, next_slot=now + step, paused_until=0.0)
            .on_conflict_do_update(
                index_elements=[_r.provider],
                set_={"next_slot": first + step},
                where=first <= now + horizon.total_seconds(),
            )
            .returning(_r.next_slot, now)
        )
        async with self._tx.write() as conn:
            taken = (await conn.execute(statement)).first()
            if taken is None:
                wait = select(first, now).where(_r.provider == provider)
                free_at, at = (await conn.execute(wait)).one()
                return SlotGrant(0, free_at - horizon.total_seconds(), at)
        next_slot, at = taken
        return SlotGrant(count, next_slot - step, at)

    async def pause_provider(self, provider: str, delay: timedelta) -> None:
        until = db_epoch() + delay.total_seconds()
        statement = (
            self._insert(provider_rates)
            .values(provider=provider, next_slot=db_epoch(), paused_until=until)
            .on_conflict_do_update(
                index_elements=[_r.provider],
                set_={"paused_until": greatest(_r.paused_until, until)},
            )
        )
        async with self._tx.write() as conn:
            await conn.execute(statement)

    async def paused_providers(self) -> dict[str, timedelta]:
        now = db_epoch()
        query = select(_r.provider, _r.paused_until - now).where(_r.paused_until > now)
        async with self._tx.read_one() as conn:
            rows = (await conn.execute(query)).all()
        return {provider: timedelta(seconds=left) for provider, left in rows}

    async def clock(self) -> float:
        async with self._tx.read() as conn:
            return float((await conn.execute(select(db_epoch()))).scalar_one())

    # ---- circuits

    async def read_circuits(self) -> CircuitReading:
        # Workers read this a few times a second, and every GET /stats: no transaction
        # around it, on the driver (driver_calls). The clock is read after the rows, so
        # no circuit looks changed in the future.
        rows_read, clock = _read_statements(self._tx.dialect)
        async with self._tx.on_driver() as conn:
            stored, at = await fetch_each(conn, [(rows_read, {}), (clock, {})])
        [[now]] = clock.values(at)
        return CircuitReading([_circuit(row) for row in rows_read.read(stored)], now)

    async def change_circuit(
        self, provider: str, scope: str, change: CircuitChange, actor: str, job_id: str | None
    ) -> Circuit:
        key = (_k.provider == provider, _k.scope == scope)
        async with self._tx.write() as conn:
            await conn.execute(
                self._insert(circuits)
                .values(
                    provider=provider,
                    scope=scope,
                    state=CircuitState.CLOSED.value,
                    failures=0,
                    updated_at=db_now(),
                )
                .on_conflict_do_nothing()
            )
            locked = select(circuits, db_now().label("now")).where(*key).with_for_update()
            row = (await conn.execute(locked)).mappings().one()
            before = _circuit(row)
            after = change(before, row["now"])
            if after != before:
                await conn.execute(circuits.update().where(*key).values(**_values(after)))
                await _audit_transition(conn, before, after, actor, job_id)
        return after


@cache
def _read_statements(dialect: Dialect) -> tuple[DriverStatement, DriverStatement]:
    return (
        DriverStatement.compile(circuits.select(), dialect),
        DriverStatement.compile(select(db_now()), dialect),
    )


def _circuit(row: Mapping[str, Any]) -> Circuit:
    return Circuit(
        provider=row["provider"],
        scope=row["scope"],
        state=CircuitState(row["state"]),
        failures=row["failures"],
        opened_at=row["opened_at"],
        probe_started_at=row["probe_started_at"],
    )


def _values(circuit: Circuit) -> dict[str, Any]:
    return {
        "state": circuit.state.value,
        "failures": circuit.failures,
        "opened_at": circuit.opened_at,
        "probe_started_at": circuit.probe_started_at,
        "updated_at": db_now(),
    }


async def _audit_transition(
    conn: AsyncConnection, before: Circuit, after: Circuit, actor: str, job_id: str | None
) -> None:
    action = transition_action(before, after)
    if action is None:
        return
    await conn.execute(
        audit_events.insert().values(
            id=new_job_id(),
            at=db_now(),
            action=action,
            actor_key_id=actor,
            actor_name=actor,
            role=SYSTEM_ROLE,
            business_id=None if after.scope == ANY_BUSINESS else after.scope,
            job_id=job_id,
            filter={"provider": after.provider, "scope": after.scope},
            count=after.failures,
        )
    )
