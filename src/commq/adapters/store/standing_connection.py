"""One connection kept checked out for single statements.

Checking a connection out of SQLAlchemy's async pool and back in costs more
than a short statement itself: several trips through the event loop (the pool's
queue both ways, autocommit switched on and off again, the reset on return):
``python -m bench.micro checkout`` measures it (0.3-0.4 ms per statement on the
project's 2-core VM). The worker's claim, the suppression lookup and a one-job
enqueue are single autocommit statements, and an idle worker's latency is a
few of them in a row, so each engine keeps one connection out for them. One
caller uses it at a time; a caller that finds it busy takes a pooled one.

On SQLite a checkout and the reset on return are each a trip to aiosqlite's
thread: about 0.2 ms of a one-job enqueue's 0.6 (``python -m bench`` scenario a),
so the enqueue's INSERT, run on the driver, borrows the standing connection too.
"""

from __future__ import annotations

import contextlib
import select
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def closed_by_server(raw: Any) -> bool:
    """Whether an idle psycopg connection is gone, without a round trip.

    A server that closed the connection (restart, terminated backend) has sent
    its goodbye, so the idle socket reads as ready; a live idle connection never
    has anything to read.
    """
    if raw.closed or raw.broken:
        return True
    try:
        socket = raw.pgconn.socket
    except psycopg.OperationalError:
        return True
    ready, _, _ = select.select([socket], [], [], 0)
    return bool(ready)


class StandingConnection:
    """A connection of ``engine`` whose statements commit on their own, lent to one caller
    at a time (PostgreSQL: in autocommit; SQLite: its driver never BEGINs, see engine.py)."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Weak: the engines' registry must not keep a disposed, forgotten engine alive.
        self._engine = weakref.ref(engine)
        self._sqlite = engine.dialect.name == "sqlite"
        self._conn: AsyncConnection | None = None
        #: Lent out right now: the next caller should take a pooled connection.
        self.busy = False

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[AsyncConnection]:
        """The connection, (re)opened if the server closed it. Check ``busy`` first."""
        self.busy = True
        try:
            conn = self._conn
            if conn is None or self._gone(conn):
                await self._drop()
                conn = self._conn = await self._connect()
            try:
                yield conn
            except BaseException:
                # An error (or a cancellation mid-statement) may leave the protocol
                # anywhere: the next statement starts on a fresh connection.
                await self._drop()
                raise
        finally:
            self.busy = False

    def _gone(self, conn: AsyncConnection) -> bool:
        if self._sqlite:  # a file: no server can close it
            return conn.closed or conn.invalidated
        return closed_by_server(_driver_connection(conn))

    async def _connect(self) -> AsyncConnection:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("the engine of this connection is gone")
        if self._sqlite:
            return await engine.connect()
        return await engine.execution_options(isolation_level="AUTOCOMMIT").connect()

    def close(self) -> None:
        """Close it now; runs where SQLAlchemy disposes of the engine (in its greenlet)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.sync_connection.invalidate()  # type: ignore[union-attr]

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()


def _driver_connection(conn: AsyncConnection) -> Any:
    # Open already: reading it is no I/O.
    return conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
