"""Where one chunk of g's bulk retry spends its time on the million-job SQLite table.

    python -m bench.retry_chunk [--chunks 6]

Builds the million-job table (as scenario d-g do), then runs 1,000-job chunks as
commq's bulk retry runs them: BEGIN IMMEDIATE, the keyset pick of the failed jobs,
the UPDATE that retries them, COMMIT. Printed per variant: the median milliseconds of
each part and the WAL pages one chunk writes.

- Committed chunks: as commq commits them (``synchronous=FULL``, SQLite's automatic
  checkpoint every 1,000 WAL pages, a 2 MB page cache), with ``synchronous=NORMAL``,
  with the automatic checkpoint off (the WAL's growth is then the chunk's pages), and
  with a 16 and a 64 MB page cache.
- Rolled-back chunks (the UPDATE alone, each variant's schema change undone with it):
  as is, without the jobs' update triggers, without each index the UPDATE changes,
  and without all of them. Any DROP in the transaction speeds up the UPDATE after it
  by more than one index's share, so the single-index rows do not add up; dropping an
  index the retry never touches shows the baseline they compare with.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite

from bench import big_table
from bench.databases import database
from bench.inspect_db import connect, sqlite_path
from commq.adapters.store import migrate
from commq.adapters.store.bulk import chunk_statement
from commq.adapters.store.rows import action_values
from commq.adapters.store.tables import jobs
from commq.domain.listing import JobFilter
from commq.domain.transitions import Action

#: The indexes a retry changes: the failed rows leave two, the pending rows enter three,
#: and the status is in one full index.
_INDEXES = (
    "ix_jobs_claim",
    "ix_jobs_due",
    "ix_jobs_business_due",
    "ix_jobs_failed",
    "ix_jobs_business_failed",
    "ix_jobs_business_status",
)
_TRIGGERS = ("commq_jobs_counted", "commq_jobs_finished")
_DIALECT = sqlite.dialect()


def _run(conn: sqlite3.Connection, statement: Any) -> list[tuple[Any, ...]]:
    """``statement`` as SQLAlchemy would send it, its values as given (the keyset's are
    already the stored text)."""
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    values = [params[name] for name in compiled.positiontup or ()]
    return [tuple(row) for row in conn.execute(str(compiled), values).fetchall()]


class _Chunks:
    """Chunks of the failed jobs in the order the retry takes them."""

    def __init__(self, conn: sqlite3.Connection, wal: Path) -> None:
        self.conn, self.wal = conn, wal
        self.after: tuple[Any, ...] | None = None

    def one(self, setup: Sequence[str], commit: bool) -> tuple[float, float, float, int]:
        """(pick, update, commit or rollback ms, the WAL's growth in pages) of the next chunk."""
        conn = self.conn
        wal_before = self._wal_pages()
        conn.execute("BEGIN IMMEDIATE")
        for statement in setup:
            conn.execute(statement)
        started = time.perf_counter()
        keys = _run(conn, chunk_statement(Action.RETRY, JobFilter(), self.after))
        picked = time.perf_counter()
        ids = [key[-1] for key in keys]
        _run(conn, jobs.update().where(jobs.c.id.in_(ids)).values(**action_values(Action.RETRY)))
        updated = time.perf_counter()
        conn.execute("COMMIT" if commit else "ROLLBACK")
        ended = time.perf_counter()
        if commit:
            self.after = min(keys)
        pages = max(0, self._wal_pages() - wal_before)
        return (picked - started) * 1e3, (updated - picked) * 1e3, (ended - updated) * 1e3, pages

    def _wal_pages(self) -> int:
        size = self.wal.stat().st_size if self.wal.exists() else 0
        return size // (4096 + 24)  # a frame: its header and one 4 KB page


def _print(
    label: str, parts: list[tuple[float, float, float, int]], end: str, pages_kept: bool = False
) -> None:
    pick, update, close, pages = (statistics.median(column) for column in zip(*parts, strict=True))
    print(
        f"  {label:44s} pick {pick:5.1f}  update {update:5.1f}  {end} {close:5.1f} ms"
        + (f"  {pages:,.0f} WAL pages" if pages_kept else "")
    )


def run(chunks: int) -> None:
    """Build the table, then time ``chunks`` chunks of each variant."""
    with database("sqlite", "chunk") as url:
        migrate(url)
        big_table.build("sqlite", url)
        with connect(url) as conn:
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
                conn.execute(f"PRAGMA {pragma}")
            _time_variants(_Chunks(conn, Path(sqlite_path(url) + "-wal")), chunks)


def _time_variants(take: _Chunks, chunks: int) -> None:
    """Time ``chunks`` chunks of each committed, then each rolled-back, variant."""
    conn = take.conn
    take.one((), commit=True)  # warm the caches
    print(f"committed 1,000-job chunks, median of {chunks}:")
    committed = (
        ("as commq commits them", ""),
        ("synchronous=NORMAL", "PRAGMA synchronous=NORMAL"),
        ("automatic checkpoint off", "PRAGMA wal_autocheckpoint=0"),
        ("a 16 MB page cache (2 MB by default)", "PRAGMA cache_size=-16000"),
        ("a 64 MB page cache", "PRAGMA cache_size=-64000"),
    )
    for label, pragma in committed:
        if pragma:
            conn.execute(pragma)
        parts = [take.one((), commit=True) for _ in range(chunks)]
        # The WAL's growth counts a chunk's pages only where no checkpoint restarted it.
        _print(label, parts, "commit", pages_kept="autocheckpoint" in pragma)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA wal_autocheckpoint=1000")
        conn.execute("PRAGMA cache_size=-2000")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"the UPDATE alone (rolled back), median of {chunks}:")
    rolled_back: list[tuple[str, tuple[str, ...]]] = [("as is", ())]
    # Any DROP in the transaction changes what follows it (the UPDATE is faster after
    # one); dropping an index the retry never touches gives the variants' baseline.
    rolled_back.append(("without ix_jobs_lease (untouched)", ("DROP INDEX ix_jobs_lease",)))
    untriggered = tuple(f"DROP TRIGGER {trigger}" for trigger in _TRIGGERS)
    rolled_back.append(("without the update triggers", untriggered))
    rolled_back += [(f"without {index}", (f"DROP INDEX {index}",)) for index in _INDEXES]
    rolled_back.append(("without all six", tuple(f"DROP INDEX {i}" for i in _INDEXES)))
    # Round-robin over the same chunk, each timed one after an untimed one: a rolled-
    # back DROP leaves SQLite's small page cache cold for whatever runs next.
    timed: dict[str, list[tuple[float, float, float, int]]] = {}
    for _ in range(chunks):
        for label, setup in rolled_back:
            take.one((), commit=False)
            timed.setdefault(label, []).append(take.one(setup, commit=False))
    for label, parts in timed.items():
        _print(label, parts, "rollback")


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.retry_chunk", description=__doc__)
    parser.add_argument("--chunks", type=int, default=6)
    run(parser.parse_args(argv).chunks)


if __name__ == "__main__":
    main()
