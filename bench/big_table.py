"""The 1,000,000-job table of scenarios d and f: 900,000 completed, 50,000 failed, 50,000 pending.

Built in SQL (generate_series on PostgreSQL, a recursive CTE on SQLite) on a migrated
commq database, spread over the last ~29 days (one job every 2.5 s) across ten
businesses, each completed or failed job with its attempt row. The failed jobs are
interleaved with the completed ones (every 19th row), as failures come and go; the
pending ones are the newest 50,000 jobs, all due: a backlog that built up over the last
day and a half (a queue sends its jobs about in the order they came, so what is still
pending is what came last, and it lies together at the end of the table). They are c's
jobs (c's business, which has a tenth of the table's history, its recipient, and no
communication id, which would add an index entry to every status change), so that d
differs from c only in the table around its jobs. Until 2026-11-28's seventh session
they were spread over all ten businesses; ``bench.drain_io million``, twice each way,
measured the same per job either way (63.5-63.6 buffers, server CPU 86-102 us). PostgreSQL gets
VACUUM ANALYZE afterwards (what autovacuum would have done by then) and a CHECKPOINT (a
long-lived table's pages are on disk; SQLite's build ends with a WAL checkpoint too);
SQLite gets no ANALYZE (commq never runs one)."""

from __future__ import annotations

import sqlite3

import psycopg

from bench.inspect_db import sqlite_path
from bench.workload import BUSINESS, RECIPIENT

TOTAL = 1_000_000
PENDING = 50_000
FAILED = 50_000

_COLUMNS = (
    "id, business_id, communication_id, channel, recipient, payload, status, priority, "
    "attempts, max_attempts, seq, run_at, last_error, error_type, provider, "
    "provider_message_id, created_at, updated_at, started_at, completed_at, failed_at"
)

# {h}: 12 hex digits of the creation time in ms; {r}: 20 hex digits of x; {t0}/{t1}: times.
# The pending jobs are c's: its {business} (which has a tenth of the table's history, the
# other nine businesses the rest) and its {recipient}.
_SELECT = """
SELECT substr({h},1,8)||'-'||substr({h},9,4)||'-7'||substr({r},1,3)||'-8'||substr({r},4,3)
         ||'-'||substr({r},9,12),
       CASE WHEN st = 'pending' OR (x / 20) % 10 = 0 THEN '{business}'
            ELSE 'biz-'||((x / 20) % 10) END,
       CASE WHEN st = 'pending' THEN NULL ELSE 'comm-'||x END, 'sms',
       CASE WHEN st = 'pending' THEN '{recipient}'
            ELSE '+1415555'||substr('0000'||(x % 10000), -4) END,
       '{{"body":"hi"}}', st, 0,
       CASE WHEN st = 'pending' THEN 0 ELSE 1 END, 3, CASE WHEN st = 'pending' THEN 0 ELSE 1 END,
       {t0},
       CASE WHEN st = 'failed' THEN 'invalid recipient (provider said 21211)' END,
       CASE WHEN st = 'failed' THEN 'permanent' END,
       CASE WHEN st = 'pending' THEN NULL ELSE 'noop' END,
       CASE WHEN st = 'completed' THEN 'noop-'||x END,
       {t0}, {t1}, CASE WHEN st = 'pending' THEN NULL ELSE {t0} END,
       CASE WHEN st = 'completed' THEN {t1} END,
       CASE WHEN st = 'failed' THEN {t1} END
"""
_STATUS = (
    f"CASE WHEN x > {TOTAL - PENDING} THEN 'pending'"
    f" WHEN x % {(TOTAL - PENDING) // FAILED} = 0 THEN 'failed' ELSE 'completed' END"
)

_ATTEMPTS = """
INSERT INTO attempts (job_id, seq, business_id, attempt, started_at, finished_at, duration_ms,
                      outcome, error, provider, provider_message_id)
SELECT id, 1, business_id, 1, started_at, updated_at, 1000,
       CASE WHEN status = 'completed' THEN 'succeeded' ELSE 'permanent_error' END,
       last_error, provider, provider_message_id
FROM jobs WHERE status IN ('completed', 'failed')
"""

_PG = (
    f"INSERT INTO jobs ({_COLUMNS}) "
    + _SELECT.format(
        business=BUSINESS,
        recipient=RECIPIENT,
        h="lpad(to_hex((extract(epoch from t) * 1000)::bigint), 12, '0')",
        r="lpad(to_hex(x), 20, '0')",
        t0="t",
        t1="t + interval '1 second'",
    ).replace("%", "%%")
    + f" FROM (SELECT x, {_STATUS.replace('%', '%%')} AS st, "
    "now() - make_interval(secs => (%s - x) * 2.5) AS t FROM generate_series(1, %s) AS x) s"
)


def build_postgres(url: str) -> None:
    """Fill a migrated, empty commq PostgreSQL database."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_PG, (TOTAL, TOTAL))
        conn.execute(_ATTEMPTS)
        conn.execute("VACUUM ANALYZE jobs")
        conn.execute("VACUUM ANALYZE attempts")
        # On disk, as a long-lived table is: left to the checkpointer, the build's dirty
        # pages were written and synced during d, one second of it at a third of its pace.
        conn.execute("CHECKPOINT")


def _sqlite_time(offset: str) -> str:
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', {offset})) || '000')"


_SQLITE = (
    f"INSERT INTO jobs ({_COLUMNS}) "
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
    + _SELECT.format(
        business=BUSINESS,
        recipient=RECIPIENT,
        h="printf('%012x', CAST(strftime('%s', 'now') AS INTEGER) * 1000 - (? - x) * 2500)",
        r="printf('%020x', x)",
        t0=_sqlite_time("-(? - x) * 2.5"),
        t1=_sqlite_time("1 - (? - x) * 2.5"),
    )
    + f" FROM (SELECT x, {_STATUS} AS st FROM c)"
)


def build_sqlite(url: str) -> None:
    """Fill a migrated, empty commq SQLite database (journal kept in WAL, as commq sets it)."""
    conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # building only: nothing here is a measurement
        conn.execute("BEGIN")
        params = [TOTAL] * _SQLITE.count("?")
        conn.execute(_SQLITE, params)
        conn.execute(_ATTEMPTS)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def build(backend: str, url: str) -> None:
    """Fill ``url`` with the million-job table."""
    (build_sqlite if backend == "sqlite" else build_postgres)(url)
