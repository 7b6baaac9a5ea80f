"""Folding the counter slots of concurrent PostgreSQL writers back into slot 0.

The triggers of migration 0002 spread each transaction's counter updates over
slots 1-15 so workers rarely wait on one row; only this compaction writes
slot 0. It locks the rows it folds in key order (the order the triggers lock
in), one table per transaction, so it cannot deadlock with them. Rollup rows
are folded once their bucket has ended; job counters every time. One process
at a time compacts (a transaction-scoped advisory lock; the others skip).
SQLite has one writer and slot 0 only: nothing to fold.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: pg_try_advisory_xact_lock key of compaction ("cmqcomp" in ASCII).
COMPACTION_LOCK_KEY = 0x636D71636F6D70

_ROLLUP_KEY = "grain, bucket_start, business_id, channel, provider, error_type"
# A bucket is folded once it ended, with a margin for transactions still running.
_ENDED = (
    "bucket_start < statement_timestamp() - CASE grain WHEN 'minute' THEN interval '6 minutes'"
    " WHEN 'hour' THEN interval '65 minutes' ELSE interval '1 day 5 minutes' END"
)


def _fold(table: str, key: str, figures: tuple[str, ...], ready: str) -> str:
    sums = ", ".join(f"sum({f})" for f in figures)
    added = ", ".join(f"{f} = t.{f} + excluded.{f}" for f in figures)
    return (
        f"WITH moved AS (DELETE FROM {table} WHERE ({key}, slot) IN"
        f" (SELECT {key}, slot FROM {table} WHERE slot > 0 AND {ready}"
        f" ORDER BY {key}, slot FOR UPDATE) RETURNING *)"
        f" INSERT INTO {table} AS t ({key}, slot, {', '.join(figures)})"
        f" SELECT {key}, 0, {sums} FROM moved GROUP BY {key} ORDER BY {key}"
        f" ON CONFLICT ({key}, slot) DO UPDATE SET {added}"
    )


FOLDS = (
    _fold("job_counts", "business_id, channel, provider, status", ("n",), "true"),
    "DELETE FROM job_counts WHERE slot = 0 AND n = 0",
    _fold("rollups", _ROLLUP_KEY, ("enqueued", "completed", "failed"), _ENDED),
    _fold("attempt_rollups", _ROLLUP_KEY, ("succeeded", "failed", "duration_ms"), _ENDED),
)


async def fold(conn: AsyncConnection, statement: str) -> bool:
    """Run one fold in ``conn``'s transaction unless another process is compacting."""
    lock = text("SELECT pg_try_advisory_xact_lock(:key)")
    if not (await conn.execute(lock, {"key": COMPACTION_LOCK_KEY})).scalar():
        return False
    await conn.execute(text(statement))
    return True
