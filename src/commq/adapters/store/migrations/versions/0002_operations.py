"""Operations: live job counters, analytics rollups, audit listing, append-only audit.

- ``job_counts``: jobs by (business, channel, provider, status), kept exact by
  triggers on ``jobs``, so /stats never counts a million rows.
- ``rollups`` (enqueued, completed and failed jobs) and ``attempt_rollups``
  (succeeded and failed attempts, summed durations): per minute, hour and day
  (UTC), kept by triggers on ``jobs`` and ``attempts`` in the transaction of the
  change, and never pruned with the jobs.
- audit_events refuse UPDATE and DELETE (PostgreSQL: also TRUNCATE).

Triggers, not application code, keep the figures, so every statement that
touches a job is counted once, whichever module issues it. On PostgreSQL they
are statement-level (one upsert per statement, however many rows it changed)
and write to one of 15 ``slot`` rows picked per transaction, so concurrent
workers rarely wait on the same counter row; slot 0 is written only by the
periodic compaction that folds the others into it. Each transaction takes its
counter locks in one order (job_counts, rollups, attempt_rollups; sorted
within a statement), so two of them cannot deadlock on counters. SQLite has a
single writer: row-level triggers, slot 0 only.

Written by hand and frozen.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# timestamptz on PostgreSQL; fixed-width UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' on SQLite.
_TIME = sa.DateTime(timezone=True).with_variant(sa.String(26), "sqlite")
_DIMENSIONS = ("business_id", "channel", "provider", "error_type")
_ROLLUP_KEY = ("grain", "bucket_start", *_DIMENSIONS, "slot")

# One row per bucket grain. PostgreSQL truncates with date_trunc(grain, t, 'UTC');
# SQLite's fixed-width text is cut to the grain and padded back to full width.
_PG_GRAINS = "(VALUES ('minute'), ('hour'), ('day')) AS g(grain)"
_SQLITE_GRAINS = (
    "(SELECT 'minute' AS grain, 16 AS width, ':00.000000' AS tail"
    " UNION ALL SELECT 'hour', 13, ':00:00.000000'"
    " UNION ALL SELECT 'day', 10, ' 00:00:00.000000') AS g"
)
_ERROR_TYPE_OF_OUTCOME = (
    "CASE {a}.outcome WHEN 'succeeded' THEN '' WHEN 'transient_error' THEN 'transient'"
    " WHEN 'permanent_error' THEN 'permanent' ELSE 'ambiguous' END"
)


def _run(sql: str) -> None:
    # Straight to the driver: SQLAlchemy would read ':00' in the SQL as a bind parameter.
    op.get_bind().exec_driver_sql(sql)


def _bucket(dialect: str, at: str) -> str:
    if dialect == "postgresql":
        return f"date_trunc(g.grain, {at}, 'UTC')"
    return f"substr({at}, 1, g.width) || g.tail"


def _grains(dialect: str) -> str:
    return _PG_GRAINS if dialect == "postgresql" else _SQLITE_GRAINS


def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    """``ON CONFLICT`` that adds the new figures to the stored ones."""
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns if c not in key)
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {added}"


_COUNT_COLUMNS = ("business_id", "channel", "provider", "status", "slot", "n")
_COUNT_KEY = _COUNT_COLUMNS[:-1]
_ROLLUP_COLUMNS = (*_ROLLUP_KEY, "enqueued", "completed", "failed")
_ATTEMPT_COLUMNS = (*_ROLLUP_KEY, "succeeded", "failed", "duration_ms")


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)})"


def _counts_sql(source: str, slot: str) -> str:
    """Add the jobs of ``source`` (a relation with a signed column ``d``) to job_counts."""
    return (
        f"{_insert('job_counts', _COUNT_COLUMNS)}"
        f" SELECT business_id, channel, coalesce(provider, ''), status, {slot}, sum(d)"
        f" FROM {source} AS x WHERE true GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0"
        " ORDER BY 1, 2, 3, 4"
        f" {_upsert('job_counts', _COUNT_COLUMNS, _COUNT_KEY)}"
    )


def _job_rollups_sql(dialect: str, source: str, slot: str) -> str:
    """Roll up the jobs of ``source``: enqueued (column e), completed and failed (status)."""
    at = "CASE WHEN j.e = 1 THEN j.created_at WHEN j.status = 'completed' THEN j.completed_at"
    at = f"coalesce({at} ELSE j.failed_at END, j.updated_at)"
    return (
        f"{_insert('rollups', _ROLLUP_COLUMNS)}"
        f" SELECT g.grain, {_bucket(dialect, at)}, j.business_id, j.channel,"
        " coalesce(j.provider, ''), coalesce(j.error_type, ''),"
        f" {slot}, sum(j.e), sum(CASE WHEN j.status = 'completed' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN j.status = 'failed' THEN 1 ELSE 0 END)"
        f" FROM {source} AS j CROSS JOIN {_grains(dialect)} WHERE true"
        " GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"
        f" {_upsert('rollups', _ROLLUP_COLUMNS, _ROLLUP_KEY)}"
    )


def _attempt_rollups_sql(dialect: str, source: str, slot: str) -> str:
    """Roll up the attempts of ``source`` (joined to their jobs for the channel)."""
    ok = "CASE WHEN a.outcome = 'succeeded' THEN {} ELSE 0 END"
    at = "coalesce(a.finished_at, a.started_at)"
    return (
        f"{_insert('attempt_rollups', _ATTEMPT_COLUMNS)}"
        f" SELECT g.grain, {_bucket(dialect, at)}, a.business_id, j.channel,"
        f" coalesce(a.provider, ''), {_ERROR_TYPE_OF_OUTCOME.format(a='a')}, {slot},"
        f" sum({ok.format(1)}), sum(CASE WHEN a.outcome = 'succeeded' THEN 0 ELSE 1 END),"
        f" sum({ok.format('coalesce(a.duration_ms, 0)')})"
        f" FROM {source} AS a JOIN jobs AS j ON j.id = a.job_id CROSS JOIN {_grains(dialect)}"
        " WHERE true GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"
        f" {_upsert('attempt_rollups', _ATTEMPT_COLUMNS, _ROLLUP_KEY)}"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _create_tables()
    _backfill(dialect)
    if dialect == "postgresql":
        _pg_triggers()
    else:
        _sqlite_triggers()
    op.create_index("ix_audit_events_job_id", "audit_events", ["job_id", "id"])


def _create_tables() -> None:
    op.create_table(
        "job_counts",
        sa.Column("business_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*_COUNT_KEY, name="pk_job_counts"),
    )
    for table, figures in (
        ("rollups", ("enqueued", "completed", "failed")),
        ("attempt_rollups", ("succeeded", "failed", "duration_ms")),
    ):
        op.create_table(
            table,
            sa.Column("grain", sa.String(8), nullable=False),
            sa.Column("bucket_start", _TIME, nullable=False),
            *(sa.Column(name, sa.Text(), nullable=False) for name in _DIMENSIONS),
            sa.Column("slot", sa.SmallInteger(), nullable=False),
            *(sa.Column(name, sa.BigInteger(), nullable=False) for name in figures),
            sa.PrimaryKeyConstraint(*_ROLLUP_KEY, name=f"pk_{table}"),
        )
        op.create_index(f"ix_{table}_business_id", table, ["business_id", "grain", "bucket_start"])
        # The rows compaction has still to fold: few and recent (PostgreSQL only).
        unfolded = sa.text("slot > 0")
        op.create_index(
            f"ix_{table}_unfolded",
            table,
            ["grain", "bucket_start"],
            postgresql_where=unfolded,
            sqlite_where=unfolded,
        )


_JOB_COLUMNS = (
    "id",
    "business_id",
    "channel",
    "provider",
    "error_type",
    "status",
    "created_at",
    "completed_at",
    "failed_at",
    "updated_at",
)


def _row(prefix: str, d: int, e: int, **replaced: str) -> str:
    """A one-relation projection of the job columns the figures read, plus ``d`` and ``e``."""
    columns = [f"{replaced.get(c, prefix + c)} AS {c}" for c in _JOB_COLUMNS]
    return f"SELECT {', '.join(columns)}, {d} AS d, {e} AS e"


def _backfill(dialect: str) -> None:
    """Figures for the jobs and attempts that exist already (history starts with them)."""
    _run(_counts_sql(f"({_row('', 1, 0)} FROM jobs)", "0"))
    # Enqueued as they were then: pending, no provider or error yet.
    fresh = {"provider": "NULL", "error_type": "NULL", "status": "'pending'"}
    _run(_job_rollups_sql(dialect, f"({_row('', 0, 1, **fresh)} FROM jobs)", "0"))
    finished = f"({_row('', 0, 0)} FROM jobs WHERE status IN ('completed', 'failed'))"
    _run(_job_rollups_sql(dialect, finished, "0"))
    _run(_attempt_rollups_sql(dialect, "attempts", "0"))


# -- PostgreSQL: statement-level triggers over transition tables -----------------------

_PG_SLOT = "mod(txid_current(), 15) + 1"
_PG_NEW_JOBS = "(SELECT *, 1 AS d, 1 AS e FROM new_jobs)"
_PG_OLD_JOBS = "(SELECT *, -1 AS d FROM old_jobs)"
_PG_UPDATED_COUNTS = (
    "(SELECT business_id, channel, provider, status, -1 AS d FROM old_jobs"
    " UNION ALL SELECT business_id, channel, provider, status, 1 FROM new_jobs)"
)
# Jobs this statement moved into completed or failed.
_PG_FINISHED_JOBS = (
    "(SELECT n.*, 0 AS e FROM new_jobs AS n JOIN old_jobs AS o ON o.id = n.id"
    " WHERE n.status IN ('completed', 'failed') AND o.status <> n.status)"
)


def _pg_function(name: str, body: list[str]) -> None:
    statements = "\n    ".join(f"{statement};" for statement in body)
    _run(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"DECLARE s smallint := {_PG_SLOT};\nBEGIN\n    {statements}\n    RETURN NULL;\nEND $$"
    )


def _pg_triggers() -> None:
    _pg_function(
        "commq_jobs_inserted",
        [_counts_sql(_PG_NEW_JOBS, "s"), _job_rollups_sql("postgresql", _PG_NEW_JOBS, "s")],
    )
    _pg_function(
        "commq_jobs_updated",
        [
            _counts_sql(_PG_UPDATED_COUNTS, "s"),
            _job_rollups_sql("postgresql", _PG_FINISHED_JOBS, "s"),
        ],
    )
    _pg_function("commq_jobs_deleted", [_counts_sql(_PG_OLD_JOBS, "s")])
    _pg_function(
        "commq_attempts_inserted", [_attempt_rollups_sql("postgresql", "new_attempts", "s")]
    )
    for event, name, tables in (
        ("INSERT", "inserted", "NEW TABLE AS new_jobs"),
        ("UPDATE", "updated", "OLD TABLE AS old_jobs NEW TABLE AS new_jobs"),
        ("DELETE", "deleted", "OLD TABLE AS old_jobs"),
    ):
        _run(
            f"CREATE TRIGGER commq_jobs_{name} AFTER {event} ON jobs"
            f" REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION commq_jobs_{name}()"
        )
    _run(
        "CREATE TRIGGER commq_attempts_inserted AFTER INSERT ON attempts"
        " REFERENCING NEW TABLE AS new_attempts FOR EACH STATEMENT"
        " EXECUTE FUNCTION commq_attempts_inserted()"
    )
    _run(
        "CREATE FUNCTION commq_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    RAISE EXCEPTION USING MESSAGE = 'audit_events is append-only: '"
        " || TG_OP || ' is refused';\nEND $$"
    )
    _run(
        "CREATE TRIGGER commq_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE"
        " ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION commq_audit_append_only()"
    )


# -- SQLite: row-level triggers, slot 0 ---------------------------------------------------

_SQLITE_KEY = (
    "business_id = OLD.business_id AND channel = OLD.channel"
    " AND provider = coalesce(OLD.provider, '') AND status = OLD.status AND slot = 0"
)


_ATTEMPT_ROW = (
    ", ".join(
        f"NEW.{c} AS {c}"
        for c in ("job_id", "business_id", "provider", "outcome", "started_at", "finished_at")
    )
    + ", NEW.duration_ms AS duration_ms"
)


def _sqlite_trigger(name: str, event: str, body: list[str], when: str = "") -> None:
    statements = " ".join(f"{statement};" for statement in body)
    condition = f" WHEN {when}" if when else ""
    _run(f"CREATE TRIGGER {name} AFTER {event}{condition} BEGIN {statements} END")


def _sqlite_triggers() -> None:
    new_job = f"({_row('NEW.', 1, 1)})"
    finished = f"({_row('NEW.', 0, 0)})"
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("status", "provider", "channel"))
    _sqlite_trigger(
        "commq_jobs_inserted",
        "INSERT ON jobs",
        [_counts_sql(new_job, "0"), _job_rollups_sql("sqlite", new_job, "0")],
    )
    _sqlite_trigger(
        "commq_jobs_counted",
        "UPDATE OF status, provider, channel ON jobs",
        [f"UPDATE job_counts SET n = n - 1 WHERE {_SQLITE_KEY}", _counts_sql(new_job, "0")],
        when=changed,
    )
    _sqlite_trigger(
        "commq_jobs_finished",
        "UPDATE OF status ON jobs",
        [_job_rollups_sql("sqlite", finished, "0")],
        when="NEW.status IN ('completed', 'failed') AND OLD.status <> NEW.status",
    )
    _sqlite_trigger(
        "commq_jobs_deleted",
        "DELETE ON jobs",
        [f"UPDATE job_counts SET n = n - 1 WHERE {_SQLITE_KEY}"],
    )
    _sqlite_trigger(
        "commq_attempts_inserted",
        "INSERT ON attempts",
        [_attempt_rollups_sql("sqlite", f"(SELECT {_ATTEMPT_ROW})", "0")],
    )
    for event in ("UPDATE", "DELETE"):
        _run(
            f"CREATE TRIGGER commq_audit_no_{event.lower()} BEFORE {event} ON audit_events"
            " BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_audit_events_job_id", "audit_events")
    if dialect == "postgresql":
        _run("DROP TRIGGER commq_audit_append_only ON audit_events")
        for name in ("inserted", "updated", "deleted"):
            _run(f"DROP TRIGGER commq_jobs_{name} ON jobs")
        _run("DROP TRIGGER commq_attempts_inserted ON attempts")
        for function in (
            "commq_audit_append_only",
            "commq_jobs_inserted",
            "commq_jobs_updated",
            "commq_jobs_deleted",
            "commq_attempts_inserted",
        ):
            _run(f"DROP FUNCTION {function}()")
    else:
        for trigger in (
            "commq_audit_no_update",
            "commq_audit_no_delete",
            "commq_jobs_inserted",
            "commq_jobs_counted",
            "commq_jobs_finished",
            "commq_jobs_deleted",
            "commq_attempts_inserted",
        ):
            _run(f"DROP TRIGGER {trigger}")
    for table in ("attempt_rollups", "rollups", "job_counts"):
        op.drop_table(table)
