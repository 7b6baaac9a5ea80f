"""Engines for the two supported databases, and the transactions the stores open.

Users write plain URLs (``sqlite:///./commq.db``, ``postgresql://user@host/db``);
commq picks the drivers: aiosqlite / psycopg for the stores, pysqlite / psycopg
for Alembic.

On SQLite the driver's own transaction handling is switched off so that commq
emits BEGIN itself: ``BEGIN IMMEDIATE`` for every transaction that writes (it
takes the write lock up front, so a read-then-write can never fail half way
with SQLITE_BUSY) and a plain ``BEGIN`` for reads. Writes inside one process
also queue on an asyncio.Lock, so they wait their turn instead of spinning in
SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from commq.adapters.store.inline_sqlite import InlineWriter
from commq.adapters.store.standing_connection import StandingConnection, closed_by_server

Dialect = Literal["sqlite", "postgresql"]

#: Milliseconds a connection waits for another process's write lock.
SQLITE_BUSY_TIMEOUT_MS = 10_000

# UPDATE ... RETURNING, which claims use, arrived in SQLite 3.35.
_SQLITE_MIN_VERSION = (3, 35)

# Execution option read by the "begin" hook: which BEGIN a SQLite transaction emits.
_BEGIN_OPTION = "commq_sqlite_begin"

#: Connections each process keeps open to PostgreSQL, and how many more it may open.
_PG_POOL_SIZE = 20
_PG_MAX_OVERFLOW = 20

_DRIVERS: dict[Dialect, tuple[str, str]] = {
    # dialect: (async driver for the stores, sync driver for Alembic)
    "sqlite": ("sqlite+aiosqlite", "sqlite"),
    "postgresql": ("postgresql+psycopg", "postgresql+psycopg"),
}

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: an acknowledged enqueue survives a power cut (NORMAL may lose the tail).
    "PRAGMA synchronous=FULL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    # Needed for ON DELETE CASCADE from jobs to attempts.
    "PRAGMA foreign_keys=ON",
)


def dialect_of(url: str | URL) -> Dialect:
    """``"sqlite"`` or ``"postgresql"`` for a database URL, with or without a driver."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend in ("postgresql", "postgres"):
        return "postgresql"
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def driver_url(database_url: str | URL, *, sync: bool = False) -> URL:
    """The URL with the driver commq uses (``sync`` for Alembic)."""
    url = make_url(database_url)
    dialect = dialect_of(url)
    if dialect == "sqlite" and url.database in (None, "", ":memory:"):
        # Every pooled connection (and Alembic's) would see its own empty database.
        raise ValueError("commq needs a SQLite file, not an in-memory database")
    async_driver, sync_driver = _DRIVERS[dialect]
    return url.set(drivername=sync_driver if sync else async_driver)


def make_engine(database_url: str) -> AsyncEngine:
    """An async engine for the stores; nothing connects until first use."""
    url = driver_url(database_url)
    if dialect_of(url) == "sqlite":
        engine = create_async_engine(url)
        _take_over_sqlite_transactions(engine.sync_engine, default_begin="BEGIN")
        _keep_a_standing_connection(engine)
        _keep_an_inline_writer(engine)
        return engine
    # The pool holds a worker's claim, result and guard connections and a server's
    # concurrent requests without opening and closing overflow connections per burst.
    engine = create_async_engine(
        url,
        pool_size=_PG_POOL_SIZE,
        max_overflow=_PG_MAX_OVERFLOW,
        connect_args={"options": _utc_session(url), **dead_peer_detection(url)},
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    _keep_a_standing_connection(engine)
    return engine


#: libpq's TCP settings: a server that vanishes without closing the connection (a
#: network partition, a host gone) is noticed in about a minute instead of the
#: kernel's quarter of an hour, so a worker's lease extension or claim does not hang
#: on a dead socket. Values given in the database URL win.
DEAD_PEER_DETECTION = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}


def dead_peer_detection(url: URL) -> dict[str, str]:
    """The TCP settings of DEAD_PEER_DETECTION that the URL does not set itself."""
    return {k: v for k, v in DEAD_PEER_DETECTION.items() if k not in url.query}


def _utc_session(url: URL) -> str:
    """The connection's ``options`` with the session's TimeZone set to UTC.

    commq stores and reads UTC whatever the server's zone, and psycopg hands back
    datetimes in ``timezone.utc`` itself only for a session in "UTC" (in "Etc/UTC",
    a common server default, each one gets a ZoneInfo that every read converts
    again). Options given in the database URL are kept.
    """
    given = url.query.get("options", "")
    given = " ".join(given) if isinstance(given, tuple) else given
    return f"{given} -c TimeZone=UTC".strip()


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """After a database restart the next transaction still gets a live connection.

    Instead of a ping (a round trip on every checkout), look at the idle socket
    (``closed_by_server``); the pool then opens a fresh connection.
    """
    if closed_by_server(dbapi_connection.driver_connection):
        raise DisconnectionError("the server closed the connection")


def _keep_a_standing_connection(engine: AsyncEngine) -> None:
    standing = _STANDING[engine.sync_engine] = StandingConnection(engine)
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: standing.close())


def _keep_an_inline_writer(engine: AsyncEngine) -> None:
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    inline = InlineWriter(engine.dialect, args, kwargs, _SQLITE_PRAGMAS)
    _INLINE[engine.sync_engine] = inline
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: inline.close())


def make_sync_engine(database_url: str) -> Engine:
    """A sync engine for Alembic; on SQLite its transactions (DDL included) are IMMEDIATE."""
    url = driver_url(database_url, sync=True)
    engine = create_engine(url)
    if dialect_of(url) == "sqlite":
        _take_over_sqlite_transactions(engine, default_begin="BEGIN IMMEDIATE")
    return engine


def _take_over_sqlite_transactions(engine: Engine, default_begin: str) -> None:
    if sqlite3.sqlite_version_info < _SQLITE_MIN_VERSION:
        raise RuntimeError(f"commq needs SQLite 3.35 or newer, this is {sqlite3.sqlite_version}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # None: the driver never emits BEGIN/COMMIT on its own; the hook below does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, default_begin))


# One standing connection per engine made by make_engine.
_STANDING: weakref.WeakKeyDictionary[Engine, StandingConnection] = weakref.WeakKeyDictionary()

# One inline writer per SQLite engine made by make_engine.
_INLINE: weakref.WeakKeyDictionary[Engine, InlineWriter] = weakref.WeakKeyDictionary()

# One write lock per SQLite engine, shared by every store built on that engine.
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


class Transactions:
    """Opens the read and write transactions of the stores built on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: Dialect = dialect_of(engine.url)
        self._writer = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._lock: asyncio.Lock | None = None
        self._standing = _STANDING.get(engine.sync_engine)
        #: SQLite: runs a lone statement on the event loop's thread (inline_sqlite.py).
        self.inline: InlineWriter | None = _INLINE.get(engine.sync_engine)
        if self.dialect == "sqlite":
            self._writer = engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            self._lock = _WRITE_LOCKS.setdefault(engine.sync_engine, asyncio.Lock())

    def write_lock(self) -> AbstractAsyncContextManager[object]:
        """What every writer of this process queues on (SQLite); nothing on PostgreSQL."""
        return nullcontext() if self._lock is None else self._lock

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that only reads (plain BEGIN on SQLite)."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes: committed on success, rolled back on any error."""
        if self._lock is None:
            async with self._writer.begin() as conn:
                yield conn
            return
        async with self._lock, self._writer.begin() as conn:
            yield conn

    def read_one(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """For reads that need no snapshot across statements: no BEGIN/COMMIT on PostgreSQL."""
        return self._one_statement(self.read)

    def write_one(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """For one statement that writes: it commits on its own on PostgreSQL (a round trip
        each for BEGIN and COMMIT saved); on SQLite a write transaction as ``write``."""
        return self._one_statement(self.write)

    @asynccontextmanager
    async def _one_statement(
        self, transaction: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    ) -> AsyncIterator[AsyncConnection]:
        if self._lock is not None:  # SQLite: BEGIN costs no round trip, keep its locking
            async with transaction() as conn:
                yield conn
            return
        async with self.on_driver() as conn:
            yield conn

    @asynccontextmanager
    async def on_driver(self) -> AsyncIterator[AsyncConnection]:
        """A connection for statements that each commit on their own: the standing one
        when it is free, else a pooled one. On SQLite only statements run on the driver
        itself qualify (SQLAlchemy's would BEGIN), and writes hold ``write_lock()``."""
        standing = self._standing
        if standing is not None and not standing.busy:
            async with standing.borrow() as conn:
                yield conn
            return
        async with (self.engine if self._lock is not None else self._autocommit).connect() as conn:
            yield conn
