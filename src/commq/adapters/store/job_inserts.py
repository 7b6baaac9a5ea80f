"""Enqueue's INSERT: one autocommit statement, run on the driver's own connection.

Enqueue is the hottest write, and a general-purpose execute costs more than the
statement itself does:

- PostgreSQL: one ``INSERT`` whose text is the same whatever the batch size (the
  jobs of a batch arrive as one jsonb array), so psycopg prepares it once per
  connection instead of parsing 14,000 placeholders per batch. A data-modifying CTE
  also NOTIFYs the workers, delivered at commit and only when a row was inserted.
  One round trip, where BEGIN, INSERT, COMMIT and a NOTIFY on another connection
  were four.
- SQLite: one ``INSERT ... VALUES (...), (...)`` run by aiosqlite in a single call
  to its thread, under the process's write lock. Through SQLAlchemy's adapter a
  statement is four calls to that thread and BEGIN, COMMIT and the pool's reset add
  five more; under load each call also waits its turn on the event loop while the
  write lock is held. A lone job's INSERT skips even that one trip: it runs on the
  event loop's thread (inline_sqlite.py) unless another process is writing.

One statement is atomic on both, so a batch is still stored all or nothing. Only
what the database decides comes back (``run_at``, ``created_at``, ``updated_at`` of
the rows inserted); the rest of each Job is what the caller gave, its payload as
a read of the stored text gives it (``fast_json.dumps_and_read``). Driver errors are raised as
SQLAlchemy's (``IntegrityError``, ...), like those of every other store call.

One-job enqueues made at the same time share a statement (group commit, below).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from commq.adapters import fast_json
from commq.adapters.store.driver_calls import fetch_all_postgresql, fetch_all_sqlite, refused
from commq.adapters.store.engine import Transactions
from commq.adapters.store.rows import job_of
from commq.adapters.store.tables import UtcDateTime, db_now
from commq.adapters.store.wakeup import CHANNEL
from commq.application.group_commit import GroupCommit
from commq.domain.jobs import Job, JobStatus, NewJob, new_job_ids

_TIME = UtcDateTime()

# The values each new row takes from its caller, in the order the statements bind them.
_GIVEN = (
    "id, business_id, communication_id, channel, recipient, payload,"
    " priority, max_attempts, idempotency_key"
)
_COLUMNS = f"{_GIVEN}, status, attempts, seq, run_at, created_at, updated_at"
_NEW = f"'{JobStatus.PENDING.value}', 0, 0"
_RETURNED = "id, run_at, created_at, updated_at"
_ON_CONFLICT = (
    "ON CONFLICT (business_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
)


def _now(dialect: Dialect) -> str:
    return str(db_now().compile(dialect=dialect))


def _pg_insert(rows: str) -> str:
    return (
        f"WITH inserted AS (INSERT INTO jobs ({_COLUMNS}) {rows}"
        f" {_ON_CONFLICT} RETURNING {_RETURNED})"
        # An uncorrelated subquery runs once, at the first row: one NOTIFY per statement,
        # none when every job was there already.
        f" SELECT {_RETURNED}, (SELECT pg_notify('{CHANNEL}', '')) FROM inserted"
    )


_PG_NOW = _now(postgresql.dialect())
# One job: plain values, which psycopg sends far cheaper than ten one-element arrays.
_PG_INSERT_ONE = _pg_insert(
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
    f" {_NEW}, coalesce(%s::timestamptz, {_PG_NOW}), {_PG_NOW}, {_PG_NOW})"
)
# Many jobs: one jsonb array of rows, each row the values of _GIVEN then run_at. Written
# by orjson (fast_json) it costs a fraction of psycopg dumping ten text arrays, and jsonb
# is parsed once, then read by position.
_PG_ROW = [f"given ->> {i}" for i in range(6)]
_PG_ROW += ["(given ->> 6)::integer", "(given ->> 7)::integer", "given ->> 8"]
_PG_INSERT_MANY = _pg_insert(
    f"SELECT {', '.join(_PG_ROW)}, {_NEW},"
    f" coalesce((given ->> 9)::timestamptz, {_PG_NOW}), {_PG_NOW}, {_PG_NOW}"
    " FROM jsonb_array_elements(%s::jsonb) AS given"
)
_SQLITE_NOW = _now(sqlite.dialect())


@lru_cache(maxsize=16)
def _sqlite_insert(rows: int) -> str:
    now = _SQLITE_NOW
    one = f"(?, ?, ?, ?, ?, ?, ?, ?, ?, {_NEW}, coalesce(?, {now}), {now}, {now})"
    values = ", ".join([one] * rows)
    return f"INSERT INTO jobs ({_COLUMNS}) VALUES {values} {_ON_CONFLICT} RETURNING {_RETURNED}"


@dataclass(frozen=True, slots=True)
class FreshJob:
    """A job about to be inserted: its new id and its payload as it will be stored."""

    id: str
    job: NewJob
    payload: str
    #: The payload as a read of ``payload`` gives it: the stored job's own copy.
    payload_read: Any

    @classmethod
    def all(cls, jobs: Sequence[NewJob]) -> list[FreshJob]:
        """Each of ``jobs`` with a new id (UUIDv7s made now, in order) and its stored payload."""
        try:
            # What JsonText writes, and what its read of that gives.
            payloads = [fast_json.dumps_and_read(job.payload) for job in jobs]
        except (TypeError, ValueError) as error:  # not JSON
            raise refused(error) from error
        ids = new_job_ids(len(jobs))
        return [
            cls(job_id, job, payload, read)
            for job_id, job, (payload, read) in zip(ids, jobs, payloads, strict=True)
        ]

    def given(self, dialect: Dialect) -> tuple[Any, ...]:
        """The row's values in the order of ``_GIVEN``, then the requested run_at (or None)."""
        job = self.job
        return (
            self.id,
            job.business_id,
            job.communication_id,
            job.channel.value,
            job.recipient,
            self.payload,
            job.priority,
            job.max_attempts,
            job.idempotency_key,
            _TIME.process_bind_param(job.run_at, dialect),
        )

    def stored(self, row: Sequence[Any], times: _Times) -> Job:
        """The Job as a read of the row would give it, from the ``_RETURNED`` values."""
        job = self.job
        # In Job's field order (a batch builds a thousand: job_of skips the frozen
        # __init__); the enqueue contract tests compare the result with a read of the row.
        return job_of(
            (
                self.id,
                job.business_id,
                job.channel,
                job.recipient,
                self.payload_read,
                JobStatus.PENDING,
                job.priority,
                0,  # attempts
                job.max_attempts,
                times.read(row[1]),  # run_at
                times.read(row[2]),  # created_at
                times.read(row[3]),  # updated_at
                job.communication_id,
                None,  # last_error
                None,  # error_type
                None,  # provider
                None,  # provider_message_id
                None,  # delivery_status
                job.idempotency_key,
                None,  # started_at
                None,  # completed_at
                None,  # failed_at
                None,  # cancelled_at
                None,  # lease_token
                None,  # lease_expires_at
            )
        )


class _Times:
    """Stored times as UtcDateTime reads them, each distinct one converted once: the
    rows of one statement share created_at and updated_at (and mostly run_at)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._read: dict[Any, datetime] = {}

    def read(self, value: Any) -> datetime:
        found = self._read.get(value)
        if found is None:
            found = _TIME.process_result_value(value, self._dialect)
            assert found is not None, "these columns are NOT NULL"
            self._read[value] = found
        return found


async def insert_jobs(tx: Transactions, fresh: Sequence[FreshJob]) -> dict[str, Job]:
    """Insert ``fresh`` all or nothing; the jobs inserted, by id.

    A job whose (business_id, idempotency_key) exists already is not inserted, and
    not in the answer. One-job calls made at the same time share a statement.
    """
    if len(fresh) != 1:
        return await _insert(tx, fresh)
    outcome = await _group(tx).write((tx, fresh[0]))
    if isinstance(outcome, Exception):
        raise outcome
    return {} if outcome is None else {outcome.id: outcome}


# Group commit for one-job enqueues (an HTTP server's POST /jobs under load): the calls
# that arrive while a statement runs are inserted together by the next one, so they
# share its fsync (SQLite: one commit at a time per database) or its round trip and
# WAL flush (PostgreSQL). A lone call is inserted at once. Keyed by engine: every
# store on one engine shares the statement, as it shares the SQLite write lock.
_Grouped = tuple[Transactions, FreshJob]
_Outcome = Job | None | Exception
_GROUPS: weakref.WeakKeyDictionary[Engine, GroupCommit[_Grouped, _Outcome]] = (
    weakref.WeakKeyDictionary()
)
# Jobs per shared statement: SQLite takes 32,766 parameters, ten per job.
_GROUP_MAX = 500


def _group(tx: Transactions) -> GroupCommit[_Grouped, _Outcome]:
    key = tx.engine.sync_engine
    group = _GROUPS.get(key)
    if group is None:
        group = _GROUPS[key] = GroupCommit(_insert_grouped, max_batch=_GROUP_MAX)
    return group


async def _insert_grouped(items: Sequence[_Grouped]) -> list[_Outcome]:
    """Each item's job (None: its key existed) or, when its own job failed, the error."""
    tx = items[0][0]
    fresh = [job for _, job in items]
    try:
        created = await _insert(tx, fresh)
    except (OperationalError, InterfaceError):
        raise  # the database, not a job: every caller gets it
    except Exception as error:
        if len(fresh) == 1:
            return [error]
        # One bad job must not fail the callers it shared the statement with: each
        # is inserted on its own again, and only the culprit gets the error.
        return [await _insert_alone(tx, job) for job in fresh]
    return [created.get(job.id) for job in fresh]


async def _insert_alone(tx: Transactions, job: FreshJob) -> _Outcome:
    try:
        return (await _insert(tx, [job])).get(job.id)
    except Exception as error:  # this caller's own failure, raised to it alone
        return error


async def _insert(tx: Transactions, fresh: Sequence[FreshJob]) -> dict[str, Job]:
    dialect = tx.engine.dialect
    try:
        rows = [f.given(dialect) for f in fresh]
    except ValueError as error:  # a naive run_at
        raise refused(error) from error
    returned = None
    if len(rows) == 1 and tx.inline is not None:  # SQLite (inline_sqlite.py)
        async with tx.write_lock():
            returned = tx.inline.rows(_sqlite_insert(1), rows[0])
    if returned is None:  # PostgreSQL, a batch, or another process holds SQLite's lock
        async with tx.on_driver() as conn:  # the statement commits on its own
            if tx.dialect == "postgresql":
                returned = await _insert_postgresql(conn, rows)
            else:
                returned = await _insert_sqlite(conn, rows, tx.write_lock())
    by_id = {f.id: f for f in fresh}
    times = _Times(dialect)
    return {row[0]: by_id[row[0]].stored(row, times) for row in returned}


async def _insert_postgresql(conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> list[Any]:
    if len(rows) == 1:
        statement, params = _PG_INSERT_ONE, list(rows[0])
    else:
        # run_at is written as its isoformat (microseconds and offset kept); None stays
        # null (the database's now).
        statement, params = _PG_INSERT_MANY, [fast_json.dumps_text(rows)]
    return await fetch_all_postgresql(conn, statement, params)


async def _insert_sqlite(
    conn: AsyncConnection, rows: list[tuple[Any, ...]], lock: AbstractAsyncContextManager[Any]
) -> list[Any]:
    params = [value for row in rows for value in row]
    return await fetch_all_sqlite(conn, _sqlite_insert(len(rows)), params, lock)
