"""SQLite's counter and rollup triggers, one row's figures written as plain VALUES.

Migration 0002 gave SQLite the statement-level triggers' SQL, fed a one-row
subquery: per changed row, a cross join with the grains, a GROUP BY and an
ORDER BY before each upsert. Row-level triggers know their single row, so the
same figures are written here as VALUES (one row per grain) straight into the
upserts. Same tables, same keys, same numbers (a contract test compares them
with 0002's); a 20,000-job drain takes about a tenth less time (docs/benchmarks.md).
PostgreSQL keeps its statement-level triggers.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

from commq.adapters.store.migrate import revision_module

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# (grain, characters of the fixed-width UTC text kept, the padding that restores its width)
_GRAINS = (
    ("minute", 16, ":00.000000"),
    ("hour", 13, ":00:00.000000"),
    ("day", 10, " 00:00:00.000000"),
)
_JOB_TRIGGERS = (
    "commq_jobs_inserted",
    "commq_jobs_counted",
    "commq_jobs_finished",
    "commq_attempts_inserted",
)
_COUNT_KEY = "business_id, channel, provider, status, slot"
_ROLLUP_KEY = "grain, bucket_start, business_id, channel, provider, error_type, slot"


def _count(sign: str, row: str) -> str:
    """Add ``sign`` 1 to the job_counts row of ``row`` (NEW or OLD)."""
    if sign == "-":
        return (
            f"UPDATE job_counts SET n = n - 1 WHERE business_id = {row}.business_id"
            f" AND channel = {row}.channel AND provider = coalesce({row}.provider, '')"
            f" AND status = {row}.status AND slot = 0"
        )
    return (
        f"INSERT INTO job_counts ({_COUNT_KEY}, n) VALUES ({row}.business_id, {row}.channel,"
        f" coalesce({row}.provider, ''), {row}.status, 0, 1)"
        f" ON CONFLICT ({_COUNT_KEY}) DO UPDATE SET n = job_counts.n + excluded.n"
    )


def _per_grain(at: str, values: str) -> str:
    """VALUES rows, one per grain: (grain, bucket of ``at``, ``values``)."""
    return ", ".join(
        f"('{grain}', substr({at}, 1, {width}) || '{tail}', {values})"
        for grain, width, tail in _GRAINS
    )


def _job_rollup(at: str, enqueued: int) -> str:
    figures = (
        "NEW.business_id, NEW.channel, coalesce(NEW.provider, ''), coalesce(NEW.error_type, ''),"
        f" 0, {enqueued}, NEW.status = 'completed', NEW.status = 'failed'"
    )
    return (
        f"INSERT INTO rollups ({_ROLLUP_KEY}, enqueued, completed, failed)"
        f" VALUES {_per_grain(at, figures)} ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET"
        " enqueued = rollups.enqueued + excluded.enqueued,"
        " completed = rollups.completed + excluded.completed,"
        " failed = rollups.failed + excluded.failed"
    )


def _attempt_rollup() -> str:
    succeeded = "NEW.outcome = 'succeeded'"
    error_type = (
        "CASE NEW.outcome WHEN 'succeeded' THEN '' WHEN 'transient_error' THEN 'transient'"
        " WHEN 'permanent_error' THEN 'permanent' ELSE 'ambiguous' END"
    )
    figures = (
        "NEW.business_id, (SELECT channel FROM jobs WHERE id = NEW.job_id),"
        f" coalesce(NEW.provider, ''), {error_type}, 0, {succeeded}, NOT ({succeeded}),"
        f" CASE WHEN {succeeded} THEN coalesce(NEW.duration_ms, 0) ELSE 0 END"
    )
    at = "coalesce(NEW.finished_at, NEW.started_at)"
    return (
        f"INSERT INTO attempt_rollups ({_ROLLUP_KEY}, succeeded, failed, duration_ms)"
        f" VALUES {_per_grain(at, figures)} ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET"
        " succeeded = attempt_rollups.succeeded + excluded.succeeded,"
        " failed = attempt_rollups.failed + excluded.failed,"
        " duration_ms = attempt_rollups.duration_ms + excluded.duration_ms"
    )


def _run(sql: str) -> None:
    # Straight to the driver: SQLAlchemy would read ':00' in the SQL as a bind parameter.
    op.get_bind().exec_driver_sql(sql)


def _trigger(name: str, event: str, body: list[str], when: str = "") -> None:
    condition = f" WHEN {when}" if when else ""
    statements = " ".join(f"{statement};" for statement in body)
    _run(f"CREATE TRIGGER {name} AFTER {event}{condition} BEGIN {statements} END")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in _JOB_TRIGGERS:
        _run(f"DROP TRIGGER {name}")
    created = "coalesce(NEW.created_at, NEW.updated_at)"
    _trigger("commq_jobs_inserted", "INSERT ON jobs", [_count("+", "NEW"), _job_rollup(created, 1)])
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("status", "provider", "channel"))
    _trigger(
        "commq_jobs_counted",
        "UPDATE OF status, provider, channel ON jobs",
        [_count("-", "OLD"), _count("+", "NEW")],
        when=changed,
    )
    finished = (
        "coalesce(CASE WHEN NEW.status = 'completed' THEN NEW.completed_at"
        " ELSE NEW.failed_at END, NEW.updated_at)"
    )
    _trigger(
        "commq_jobs_finished",
        "UPDATE OF status ON jobs",
        [_job_rollup(finished, 0)],
        when="NEW.status IN ('completed', 'failed') AND OLD.status <> NEW.status",
    )
    _trigger("commq_attempts_inserted", "INSERT ON attempts", [_attempt_rollup()])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # 0002 creates its triggers all at once, the audit ones included.
    for name in (*_JOB_TRIGGERS, "commq_jobs_deleted", "commq_audit_no_update"):
        _run(f"DROP TRIGGER {name}")
    _run("DROP TRIGGER commq_audit_no_delete")
    revision_module("0002_operations.py")._sqlite_triggers()
