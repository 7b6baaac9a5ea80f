"""A lone SQLite write run on the event loop's own thread.

A statement sent through aiosqlite is two thread wake-ups, to its thread and
back: ``SELECT 1`` takes 65-110 us that way against 1-4 us in the calling thread
(``python -m bench.insert_costs sqlite`` on the project's 2-core VM), out of a
one-job enqueue's 700-1,000. That trip buys overlap: the event loop goes on with
other requests while the statement and its fsync run. A lone write (a one-job
enqueue with no other caller waiting to share its statement) has nothing to
overlap with, so it runs where it was issued.

Its connection never waits for a lock. When another process holds SQLite's
write lock, the statement fails at once with SQLITE_BUSY, having done nothing,
and the caller sends it through aiosqlite's thread instead, whose busy handler
waits there without stalling the event loop. Writers of this process take turns
on the process's write lock first (engine.py), so they never see each other busy.
What the loop still waits for is the statement itself and its commit's fsync
(synchronous=FULL, as on every commq connection).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


class InlineWriter:
    """One sqlite3 connection to the engine's database, for statements that commit on their own.

    Opened at first use, with the arguments the engine's driver connects with and
    the engine's ``pragmas`` (its busy timeout left out: this connection never waits).
    Callers hold the process's write lock (``Transactions.write_lock()``).
    """

    def __init__(
        self,
        dialect: Dialect,
        connect_args: Sequence[Any],
        connect_kwargs: dict[str, Any],
        pragmas: Sequence[str],
    ) -> None:
        self._dialect = dialect
        self._pragmas = tuple(p for p in pragmas if "busy_timeout" not in p)
        self._args = tuple(connect_args)
        # isolation_level None: no implicit BEGIN, each statement commits on its own.
        # check_same_thread off: the engine may be disposed of from another thread.
        self._kwargs = connect_kwargs | {
            "timeout": 0,
            "isolation_level": None,
            "check_same_thread": False,
        }
        self._conn: sqlite3.Connection | None = None

    def rows(self, statement: str, params: Sequence[Any]) -> list[Any] | None:
        """Run ``statement`` as a transaction of its own; its rows, or None when another
        process holds the write lock (nothing was done: send it through aiosqlite)."""
        try:
            conn = self._conn or self._open()
            return conn.execute(statement, params).fetchall()
        except sqlite3.Error as error:
            if _busy(error):
                return None
            if isinstance(error, sqlite3.OperationalError):
                self.close()  # an I/O error may leave the file handle unfit: reopen next time
            raise DBAPIError.instance(
                statement, params, error, sqlite3.Error, dialect=self._dialect
            ) from error

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(*self._args, **self._kwargs)
        try:
            for pragma in self._pragmas:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def close(self) -> None:
        """Close the connection, if open; the next statement opens it again."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _busy(error: sqlite3.Error) -> bool:
    # The primary result code, under any extended one (SQLITE_BUSY_RECOVERY, ...).
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY
