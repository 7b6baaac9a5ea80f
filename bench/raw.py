"""The limits of this machine's PostgreSQL (and SQLite), measured with no queue library at all.

- single-row INSERT with autocommit, one connection (what one-at-a-time enqueue can reach);
- ``executemany`` of the same INSERT in one transaction (what batch enqueue can reach);
- a bare ``FOR UPDATE SKIP LOCKED`` claim-and-complete loop in batches of 100 over a
  partial index on the pending rows, one connection, claim and complete each committed
  (what dispatch can reach), on a 20,000-row backlog and on a 1,000,000-row table.
"""

from __future__ import annotations

import sqlite3
import time

import psycopg

from bench.workload import rate

TABLE = """
CREATE TABLE raw_jobs (
    id bigserial PRIMARY KEY,
    status text NOT NULL DEFAULT 'pending',
    run_at timestamptz NOT NULL DEFAULT now(),
    payload text NOT NULL,
    completed_at timestamptz
);
CREATE INDEX raw_jobs_pending ON raw_jobs (run_at, id) WHERE status = 'pending';
"""
INSERT = "INSERT INTO raw_jobs (payload) VALUES (%s)"
PAYLOAD = '{"body":"hi"}'
CLAIM = """
WITH picked AS MATERIALIZED (
    SELECT id FROM raw_jobs WHERE status = 'pending' AND run_at <= now()
    ORDER BY run_at, id LIMIT 100 FOR UPDATE SKIP LOCKED
)
UPDATE raw_jobs SET status = 'processing' FROM picked WHERE raw_jobs.id = picked.id
RETURNING raw_jobs.id
"""
COMPLETE = "UPDATE raw_jobs SET status = 'completed', completed_at = now() WHERE id = ANY(%s)"


def _fresh(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_jobs")
        conn.execute(TABLE)


def single_insert(url: str, count: int) -> float:
    """Rows/s of one-row INSERTs, each its own autocommitted transaction."""
    _fresh(url)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(count):
            conn.execute(INSERT, (PAYLOAD,))
        return rate(count, time.perf_counter() - started)


def executemany(url: str, batches: int, size: int = 1000) -> float:
    """Rows/s of ``executemany`` of ``size`` rows, one transaction per batch."""
    _fresh(url)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for _ in range(batches):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(INSERT, [(PAYLOAD,)] * size)
        return rate(batches * size, time.perf_counter() - started)


def fill(url: str, pending: int, done: int = 0) -> None:
    """``done`` completed rows and ``pending`` due rows, interleaved, via generate_series."""
    _fresh(url)
    total = pending + done
    every = total // pending
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO raw_jobs (status, run_at, payload, completed_at) "
            "SELECT CASE WHEN x %% %s = 0 THEN 'pending' ELSE 'completed' END, "
            "now() - interval '1 hour', %s, "
            "CASE WHEN x %% %s = 0 THEN NULL ELSE now() END "
            "FROM generate_series(1, %s) AS x",
            (every, PAYLOAD, every, total),
        )
        conn.execute("VACUUM ANALYZE raw_jobs")
        if done:
            conn.execute("CHECKPOINT")  # the million-row table on disk, as big_table leaves d's


def claim_loop(url: str) -> tuple[float, int]:
    """(rows/s, rows) of the claim-and-complete loop until no pending row is left."""
    done = 0
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        while True:
            with conn.transaction():
                ids = [row[0] for row in conn.execute(CLAIM).fetchall()]
            if not ids:
                break
            with conn.transaction():
                conn.execute(COMPLETE, (ids,))
            done += len(ids)
        return rate(done, time.perf_counter() - started), done


def sqlite_single_insert(path: str, count: int) -> float:
    """Rows/s of autocommitted one-row INSERTs in WAL mode with synchronous=FULL (commq's)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS raw_jobs (id INTEGER PRIMARY KEY, payload TEXT)")
        started = time.perf_counter()
        for _ in range(count):
            conn.execute("INSERT INTO raw_jobs (payload) VALUES (?)", (PAYLOAD,))
        return rate(count, time.perf_counter() - started)
    finally:
        conn.close()
