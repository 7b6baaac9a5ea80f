"""Recording many workers' results, whatever their number, in one statement or two.

The results travel as one JSON document (read with PostgreSQL's
``json_to_recordset`` or SQLite's ``json_each``), so the statement's text
never changes with the batch size: PostgreSQL prepares it once and
SQLAlchemy compiles it once. JSON rather than arrays: encoding it is one C
call, where psycopg dumps array parameters element by element in Python.
One UPDATE ... FROM applies every decision whose lease is still held
(compare-and-set on id and lease token: only a processing job holds one, every
change out of processing clears it) and returns what the attempt rows need; one
INSERT appends those attempts. On PostgreSQL both are one autocommit statement
(the INSERT a data-modifying CTE reading the UPDATE's RETURNING), so the
attempts' statement-level counter trigger runs once per batch and the worker
pays one round trip. The jobs are written before their attempts, the order
every transaction keeps so that counter locks never deadlock (see migration
0002).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    Float,
    Integer,
    Subquery,
    Text,
    Update,
    any_,
    case,
    column,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import NamedFromClause, TextualSelect

from commq.adapters import fast_json
from commq.adapters.store.driver_calls import DriverStatement, sqlite_transaction
from commq.adapters.store.engine import Dialect
from commq.adapters.store.tables import attempts, db_after, db_now, jobs, utc_text
from commq.application.ports import WorkerResult
from commq.domain.jobs import JobStatus, duration_between

_c = jobs.c

#: The per-result fields: (name, SQLAlchemy type, PostgreSQL type).
_RESULT: tuple[tuple[str, Any, str], ...] = (
    ("id", Text, "text"),
    ("token", Text, "text"),
    ("status", Text, "text"),
    ("provider", Text, "text"),
    ("message_id", Text, "text"),
    ("last_error", Text, "text"),
    ("error_type", Text, "text"),
    ("given_back", Integer, "int"),
    ("retry_in_s", Float, "float8"),
)
#: The attempt row's own values, which PostgreSQL writes in the same statement.
_ATTEMPT: tuple[tuple[str, Any, str], ...] = (
    ("started_at", Text, "timestamptz"),
    ("finished_at", Text, "timestamptz"),
    ("duration_ms", Integer, "int"),
    ("outcome", Text, "text"),
    ("error", Text, "text"),
)

_WORKER_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.PENDING})


def _result_row(item: WorkerResult) -> dict[str, Any]:
    """One result as the fields of ``_RESULT``."""
    decision, result = item.decision, item.report.result
    if decision.status not in _WORKER_STATUSES:
        raise ValueError(f"a worker cannot move a job to {decision.status.value}")
    completed = decision.status is JobStatus.COMPLETED
    error_type = decision.error_type
    retry_in = decision.retry_in or timedelta(0)
    return {
        "id": item.job.id,
        "token": item.lease_token,
        "status": decision.status.value,
        "provider": result.provider,
        "message_id": result.provider_message_id,
        "last_error": None if completed else decision.last_error,
        "error_type": None if completed or error_type is None else error_type.value,
        "given_back": 0 if decision.counts_attempt else 1,
        "retry_in_s": retry_in.total_seconds(),
    }


def _result_and_attempt_row(item: WorkerResult) -> dict[str, Any]:
    """One result as the fields of ``_RESULT`` and ``_ATTEMPT``."""
    report = item.report
    return {
        **_result_row(item),
        # Written by fast_json as their isoformat (in C, where isoformat() was a call each).
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "duration_ms": duration_between(report.started_at, report.finished_at),
        "outcome": item.decision.attempt_outcome.value,
        "error": report.result.error,
    }


def _pg_source(fields: Sequence[tuple[str, Any, str]]) -> TextualSelect:
    """The rows of the JSON array bound to ``results``, typed by ``fields``."""
    typed = ", ".join(f"{name} {pg_type}" for name, _, pg_type in fields)
    clause = text(f"SELECT * FROM json_to_recordset(CAST(:results AS json)) AS r({typed})")
    return clause.columns(*(column(name, kind) for name, kind, _ in fields))


def _sqlite_source() -> TextualSelect:
    read = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name, _, _ in _RESULT)
    clause = text(f"SELECT {read} FROM json_each(:results)")
    return clause.columns(*(column(name, kind) for name, kind, _ in _RESULT))


def _source(dialect: Dialect) -> Subquery:
    clause = _pg_source(_RESULT) if dialect == "postgresql" else _sqlite_source()
    return clause.subquery("r")


@cache
def record_statement(dialect: Dialect) -> Update:
    """The UPDATE applying a batch of results (bind it with ``result_params``)."""
    return _applied(_source(dialect))


def _applied(r: NamedFromClause, *also: ColumnElement[bool]) -> Update:
    """The UPDATE applying the results read from ``r`` (and holding ``also``)."""
    given = r.c
    status = given.status
    # No status condition: the token is the compare-and-set (module docstring), and with
    # the status in it PostgreSQL's planner, guessing few processing rows, read all of
    # them (dead index entries too) through ix_jobs_lease instead of the primary key.
    return (
        update(jobs)
        .where(_c.id == given.id, _c.lease_token == given.token, *also)
        .values(
            status=status,
            provider=given.provider,
            provider_message_id=given.message_id,
            last_error=given.last_error,
            error_type=given.error_type,
            attempts=_c.attempts - given.given_back,
            completed_at=case(
                (status == JobStatus.COMPLETED.value, db_now()), else_=_c.completed_at
            ),
            failed_at=case((status == JobStatus.FAILED.value, db_now()), else_=_c.failed_at),
            run_at=case(
                (status == JobStatus.PENDING.value, db_after(given.retry_in_s)),
                else_=_c.run_at,
            ),
            seq=_c.seq + 1,
            updated_at=db_now(),
            lease_token=None,
            lease_expires_at=None,
            worker_id=None,
        )
        .returning(_c.id, _c.seq, _c.attempts, _c.business_id)
    )


@cache
def _pg_record_and_append() -> DriverStatement:
    """PostgreSQL: the results' UPDATE and their attempt rows' INSERT as one statement.

    Run on its own (autocommit), it is one round trip and one commit, where BEGIN,
    UPDATE, INSERT and COMMIT were four. The INSERT reads the UPDATE's RETURNING, so
    only the attempts of results whose lease still held are written, and the jobs'
    statement trigger is queued, and takes its counter locks, before the attempts'.
    It returns the ids of the jobs recorded.
    """
    # The document is parsed once (MATERIALIZED), where each reference parsed it again.
    source = _pg_source(_RESULT + _ATTEMPT).cte("given").prefix_with("MATERIALIZED")
    given = source.c
    # The jobs are found by primary key from the ids as an array: joined to the parsed
    # rows alone, the planner guessed wrong about their number and read every
    # processing row through ix_jobs_lease.
    ids = func.array(select(given.id).scalar_subquery(), type_=ARRAY(Text()))
    done = _applied(source, _c.id == any_(ids)).cte("done")
    rows = select(
        done.c.id,
        done.c.seq,
        done.c.business_id,
        done.c.attempts,
        given.started_at,
        given.finished_at,
        given.duration_ms,
        given.outcome,
        given.error,
        given.provider,
        given.message_id,
    ).join_from(done, source, given.id == done.c.id)
    columns = [c.name for c in attempts.c]  # in the order ``rows`` selects them
    append = insert(attempts).from_select(columns, rows)
    statement = select(done.c.id).add_cte(append.cte("appended"))
    return DriverStatement.compile(statement)


@cache
def _sqlite_record() -> DriverStatement:
    return DriverStatement.compile(record_statement("sqlite"), "sqlite")


# The attempts' columns in the order ``_sqlite_attempt_row`` gives their values.
_SQLITE_APPEND = (
    "INSERT INTO attempts (job_id, seq, business_id, attempt, started_at, finished_at,"
    " duration_ms, outcome, error, provider, provider_message_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def record_sqlite(
    conn: AsyncConnection,
    items: Sequence[WorkerResult],
    write_lock: AbstractAsyncContextManager[Any],
) -> set[str]:
    """Apply ``items`` and append their attempts in one transaction; the job ids recorded.

    Run on the driver (driver_calls): four trips to aiosqlite's thread (BEGIN, the
    UPDATE, the attempts, COMMIT), where SQLAlchemy's execute made a dozen.
    """
    record = _sqlite_record()
    async with sqlite_transaction(conn, write_lock) as transaction:
        returned = await transaction.fetch_all(record.text, record.bound(result_params(items)))
        # RETURNING id, seq, attempts, business_id: none of them needs a conversion.
        recorded = {row[0]: row for row in returned}
        kept = [
            _sqlite_attempt_row(item, recorded[item.job.id])
            for item in items
            if item.job.id in recorded
        ]
        if kept:
            await transaction.execute_many(_SQLITE_APPEND, kept)
    return set(recorded)


def _sqlite_attempt_row(item: WorkerResult, recorded: Sequence[Any]) -> tuple[Any, ...]:
    """The ``_SQLITE_APPEND`` values of one recorded result (``recorded``: its RETURNING
    row). Built straight as the driver takes them: as a dict converted column by column
    it was a fifth of the worker's own time per job on SQLite."""
    report, result = item.report, item.report.result
    return (
        item.job.id,
        recorded[1],  # seq
        recorded[3],  # business_id
        recorded[2],  # attempt: the job's attempts after the UPDATE
        utc_text(report.started_at),
        utc_text(report.finished_at),
        duration_between(report.started_at, report.finished_at),
        item.decision.attempt_outcome.value,
        result.error,
        result.provider,
        result.provider_message_id,
    )


async def record_postgresql(conn: AsyncConnection, items: Sequence[WorkerResult]) -> set[str]:
    """Apply ``items`` and append their attempts in one statement; the job ids recorded."""
    document = _document([_result_and_attempt_row(item) for item in items])
    rows = await _pg_record_and_append().rows(conn, {"results": document})
    return {row[0] for row in rows}


def result_params(items: Sequence[WorkerResult]) -> dict[str, Any]:
    """The bound values of ``record_statement`` for ``items``."""
    return {"results": _document([_result_row(item) for item in items])}


def _document(rows: list[dict[str, Any]]) -> str:
    return fast_json.dumps_text(rows)
