"""The claim and reclaim queries, written per dialect.

PostgreSQL: many workers on many machines claim at once, so the inner SELECT
locks the rows it picks with ``FOR UPDATE SKIP LOCKED``; a claimer passes over
rows another claimer holds instead of waiting for them, and no row is handed
out twice. SQLite: the same UPDATE runs inside ``BEGIN IMMEDIATE`` (see
engine.Transactions.write), which already serialises every writer.

Both compare against the database clock only (``db_now``), never this process's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    Float,
    Integer,
    Select,
    String,
    Update,
    any_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from commq.adapters.store.driver_calls import DriverStatement
from commq.adapters.store.engine import Dialect
from commq.adapters.store.rows import job_reader
from commq.adapters.store.tables import db_after, db_now, jobs, sql_status
from commq.application.ports import ClaimedJobs
from commq.domain.jobs import (
    AttemptOutcome,
    Channel,
    ErrorType,
    Job,
    JobStatus,
    duration_between,
)
from commq.domain.suppression import key_is_ascii_lowercase

#: The last error of a job whose worker stopped reporting before its lease ran out.
LEASE_LOST_ERROR = "lease expired: the worker stopped reporting"

#: At most this many expired leases are reclaimed per transaction.
RECLAIM_BATCH = 500

_c = jobs.c
_PENDING = sql_status(JobStatus.PENDING)
_PROCESSING = sql_status(JobStatus.PROCESSING)


class new_lease_token(FunctionElement[str]):
    """A fresh random token per row, made by the database."""

    type = String()
    inherit_cache = True
    name = "new_lease_token"


@compiles(new_lease_token)
def _pg_token(element: new_lease_token, compiler: SQLCompiler, **kw: Any) -> str:
    return "CAST(gen_random_uuid() AS TEXT)"


@compiles(new_lease_token, "sqlite")
def _sqlite_token(element: new_lease_token, compiler: SQLCompiler, **kw: Any) -> str:
    return "lower(hex(randomblob(16)))"


def _picked(ids: Select[Any], dialect: Dialect) -> Select[Any]:
    """The ids to change, each picked once and never one another claimer holds."""
    if dialect == "sqlite":
        # No row locks (and no FOR UPDATE): SQLite's writers are serialised already.
        return ids
    # MATERIALIZED: evaluated once. Written inline as ``id IN (SELECT ... SKIP LOCKED)``
    # PostgreSQL may re-run the subquery per outer row; each re-run skips the rows
    # this very statement just updated and picks more, so LIMIT n claims more than n.
    picked = ids.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    return select(picked.c.id)


@dataclass(frozen=True, slots=True)
class DriverClaim:
    """A claim statement compiled for the driver, and how to read the jobs it returns."""

    statement: DriverStatement
    read_job: Callable[[Sequence[Any]], Job]
    #: Positions in a returned row of the job's id, its recipient and ON_SUPPRESSION_LIST.
    id_at: int
    recipient_at: int
    listed_at: int

    @classmethod
    def of(cls, statement: DriverStatement) -> DriverClaim:
        """``statement``'s reader: each row's values by position, converted once."""
        at = {name: i for i, name in enumerate(statement.names)}
        return cls(
            statement,
            job_reader(statement.names, dict(statement.readers)),
            at["id"],
            at["recipient"],
            at[ON_SUPPRESSION_LIST],
        )

    def claimed(self, rows: Sequence[Sequence[Any]]) -> ClaimedJobs:
        """The claimed jobs of ``rows`` (raw driver rows) in claim order."""
        # UPDATE ... RETURNING does not keep the inner ORDER BY.
        jobs_read = sorted(map(self.read_job, rows), key=lambda j: (-j.priority, j.run_at, j.id))
        id_at, recipient_at, listed_at = self.id_at, self.recipient_at, self.listed_at
        unsuppressed = frozenset(
            row[id_at]
            for row in rows
            if not row[listed_at] and key_is_ascii_lowercase(row[recipient_at])
        )
        return ClaimedJobs(jobs_read, unsuppressed)


def claim_on_driver(
    dialect: Dialect,
    worker_id: str,
    limit: int,
    lease: timedelta,
    business_id: str | None,
    skip_channels: Collection[Channel] = (),
) -> tuple[DriverClaim, dict[str, Any]]:
    """Take up to ``limit`` due pending jobs, highest priority then oldest runAt.

    Jobs of ``skip_channels`` (channels whose providers are all down or paused)
    stay pending, so a worker does not claim what it could only give back.
    Returns the statement, compiled once per shape for the driver (driver_calls)
    with its reader, and its bound values.
    """
    one_business, skipped, params = _claim_shape(
        dialect, worker_id, limit, lease, business_id, skip_channels
    )
    return _driver_claim(dialect, one_business, skipped), params


def _claim_shape(
    dialect: Dialect,
    worker_id: str,
    limit: int,
    lease: timedelta,
    business_id: str | None,
    skip_channels: Collection[Channel],
) -> tuple[bool, tuple[str, ...], dict[str, Any]]:
    """(for one business, channels skipped in the text, bound values) of a claim."""
    skipped = tuple(sorted(c.value for c in skip_channels))
    params: dict[str, Any] = {
        "claim_worker": worker_id,
        "claim_limit": limit,
        "claim_lease_s": lease.total_seconds(),
    }
    if business_id is not None:
        params["claim_business"] = business_id
    if _pinned(dialect, business_id is not None):
        params["claim_skipped"] = list(skipped)
        skipped = ()  # a bound value of the one statement
    return business_id is not None, skipped, params


def _pinned(dialect: Dialect, one_business: bool) -> bool:
    """Whether the rows are picked by commq_due_ids (migration 0005: the plan pinned).

    Not for one business: no index has its claim order, so it sorts either way,
    and walking every business's pending rows would be worse.
    """
    return dialect == "postgresql" and not one_business


@cache
def _claim_template(dialect: Dialect, one_business: bool, skipped: tuple[str, ...]) -> Update:
    # Built once per shape: building and hashing the statement cost more than running it.
    limit = bindparam("claim_limit", type_=Integer())
    if _pinned(dialect, one_business):
        skip = bindparam("claim_skipped", type_=ARRAY(String()))
        ids = func.commq_due_ids(limit, skip).table_valued("id").render_derived(name="due")
        # The ids are read once, then fetched by primary key. Not with IN (...), nor with
        # the status repeated here: guessing few pending rows, the planner would rather
        # read them all through a pending-only index. The function locked the rows it
        # picked, and pending they stay until this statement changes them.
        picked = func.array(select(ids.c.id).scalar_subquery(), type_=ARRAY(String()))
        where = _c.id == any_(picked)
    else:
        due = select(_c.id).where(_c.status == _PENDING, _c.run_at <= db_now())
        if one_business:
            due = due.where(_c.business_id == bindparam("claim_business"))
        if skipped:
            # Literals: the statement is compiled once per set of channels skipped.
            due = due.where(_c.channel.not_in([_literal(c) for c in skipped]))
        due = due.order_by(_c.priority.desc(), _c.run_at, _c.id).limit(limit)
        where = _c.id.in_(_picked(due, dialect)) & (_c.status == _PENDING)
    return (
        update(jobs)
        .where(where)
        .values(
            status=JobStatus.PROCESSING.value,
            attempts=_c.attempts + 1,
            started_at=db_now(),
            updated_at=db_now(),
            lease_token=new_lease_token(),
            lease_expires_at=db_after(bindparam("claim_lease_s", type_=Float())),
            worker_id=bindparam("claim_worker", type_=String()),
        )
        .returning(*jobs.c, _on_suppression_list(dialect).label(ON_SUPPRESSION_LIST))
    )


def _literal(value: str) -> ColumnElement[str]:
    # Only commq's own names (channel values) are written in: no quote to escape.
    return literal_column(f"'{value}'", String())


@cache
def _driver_claim(dialect: Dialect, one_business: bool, skipped: tuple[str, ...]) -> DriverClaim:
    statement = _claim_template(dialect, one_business, skipped)
    return DriverClaim.of(DriverStatement.compile(statement, dialect))


#: The claim's extra column: whether the job's recipient, as the database lowercases
#: it, is on its business's suppression list for the channel (see ClaimedJobs).
ON_SUPPRESSION_LIST = "on_suppression_list"


def _on_suppression_list(dialect: Dialect) -> ColumnElement[bool]:
    # Written out: SQLite's RETURNING would name the columns without their tables.
    lowered = "lower(jobs.recipient)"  # SQLite's lower() is ASCII-only
    if dialect == "postgresql":
        # ASCII-only whatever the database's locale (a Turkish I), and compared in the
        # column's own collation so that the list's primary key serves the lookup.
        lowered = 'lower(jobs.recipient COLLATE "C") COLLATE "default"'
    key = f"CASE WHEN jobs.channel = '{Channel.EMAIL.value}' THEN {lowered} ELSE jobs.recipient END"
    return literal_column(
        "EXISTS (SELECT 1 FROM suppressions AS listed"
        " WHERE listed.business_id = jobs.business_id AND listed.channel = jobs.channel"
        f" AND listed.recipient = {key})",
        Boolean(),
    )


def reclaim_statement(dialect: Dialect) -> Update:
    """Put up to RECLAIM_BATCH expired leases back (pending, or failed when attempts are spent).

    Returns what the ``lost`` attempt rows need. Two reclaimers at once are safe:
    the row lock (PostgreSQL) or the write lock (SQLite) lets one of them see each
    job still processing and expired; the other finds it pending and skips it.
    """
    expired = (
        select(_c.id)
        .where(_c.status == _PROCESSING, _c.lease_expires_at <= db_now())
        .order_by(_c.lease_expires_at)
        .limit(RECLAIM_BATCH)
    )
    spent = _c.attempts >= _c.max_attempts
    return (
        update(jobs)
        .where(_c.id.in_(_picked(expired, dialect)), _c.status == _PROCESSING)
        .values(
            status=case((spent, JobStatus.FAILED.value), else_=JobStatus.PENDING.value),
            failed_at=case((spent, db_now()), else_=None),
            run_at=case((spent, _c.run_at), else_=db_now()),
            # It may have been sent before the worker went quiet.
            error_type=ErrorType.AMBIGUOUS.value,
            last_error=LEASE_LOST_ERROR,
            seq=_c.seq + 1,
            updated_at=db_now(),
            lease_token=None,
            lease_expires_at=None,
            worker_id=None,
        )
        .returning(
            _c.id,
            _c.business_id,
            _c.seq,
            _c.attempts,
            _c.started_at,
            _c.updated_at,
        )
    )


def lost_attempt(row: RowMapping) -> dict[str, Any]:
    """The ``attempts`` values recording a reclaimed lease (a row of reclaim_statement)."""
    started_at = row["started_at"] or row["updated_at"]
    return {
        "job_id": row["id"],
        "seq": row["seq"],
        "business_id": row["business_id"],
        "attempt": row["attempts"],
        "started_at": started_at,
        "finished_at": row["updated_at"],
        "duration_ms": duration_between(started_at, row["updated_at"]),
        "outcome": AttemptOutcome.LOST.value,
        "error": LEASE_LOST_ERROR,
    }
