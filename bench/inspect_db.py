"""Plain-SQL reads the benchmark makes around commq (never through commq itself)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///path`` URL."""
    return url.removeprefix("sqlite:///")


@contextmanager
def connect(url: str) -> Iterator[Any]:
    """A DB-API connection to a commq database (autocommit on PostgreSQL)."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(sqlite_path(url), timeout=30, isolation_level=None)) as conn:
            yield conn
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn


def fetch(url: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """All rows of one query (``?`` placeholders on SQLite, ``%s`` on PostgreSQL)."""
    with connect(url) as conn:
        return list(conn.execute(query, params).fetchall())


def execute(url: str, statement: str, params: Sequence[Any] = ()) -> int:
    """Run one statement that returns no rows; its row count."""
    with connect(url) as conn:
        return int(conn.execute(statement, params).rowcount)


def db_now(url: str) -> Any:
    """The database clock, in the form commq stores it (text on SQLite)."""
    now = SQLITE_NOW if url.startswith("sqlite") else "statement_timestamp()"
    return fetch(url, f"SELECT {now}")[0][0]


def as_datetime(value: Any) -> datetime:
    """A stored time as an aware datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value


@dataclass(frozen=True)
class Completions:
    """Jobs completed since a moment, from the database's own completed_at stamps."""

    count: int
    first: datetime | None
    last: datetime | None
    at_first: int
    attempts: int
    left_pending: int

    def jobs_per_s(self) -> float:
        """Completions after the first stamp over the time from the first stamp to the last."""
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return (self.count - self.at_first) / (self.last - self.first).total_seconds()


def completions(url: str, since: Any) -> Completions:
    """Count completions with ``completed_at >= since`` and their succeeded attempt rows."""
    p = "?" if url.startswith("sqlite") else "%s"
    [(count, first, last)] = fetch(
        url,
        f"SELECT count(*), min(completed_at), max(completed_at) FROM jobs "
        f"WHERE status = 'completed' AND completed_at >= {p}",
        (since,),
    )
    at_first = fetch(url, f"SELECT count(*) FROM jobs WHERE completed_at = {p}", (first,))[0][0]
    attempts = fetch(
        url,
        f"SELECT count(*) FROM attempts WHERE outcome = 'succeeded' AND finished_at >= {p}",
        (since,),
    )[0][0]
    pending = fetch(url, "SELECT count(*) FROM jobs WHERE status IN ('pending', 'processing')")
    return Completions(
        count,
        None if first is None else as_datetime(first),
        None if last is None else as_datetime(last),
        at_first,
        attempts,
        pending[0][0],
    )
