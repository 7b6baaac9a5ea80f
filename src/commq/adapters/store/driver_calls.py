"""Statements straight on the driver's connection, for the hottest statements.

SQLAlchemy's execute costs more than a small statement does: a trip into its
greenlet, compiled-cache lookups, and a Python call per column of every row it
reads back. On SQLite each of its cursor calls, and BEGIN and COMMIT, is also a
trip to aiosqlite's thread and back (a claim of one job made nine). The enqueue,
the worker's claim and its result write skip it: their text is fixed (compiled
once, or written by hand), and the only conversions their rows need are those of
commq's own column types, applied here. Errors still come out as SQLAlchemy's
(``IntegrityError``, ...), like those of every other store call, and a
connection left mid-transaction is not pooled again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql import psycopg as sa_psycopg
from sqlalchemy.dialects.sqlite import aiosqlite as sa_aiosqlite
from sqlalchemy.engine import Compiled
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from commq.adapters.store.engine import Dialect

_DIALECTS = {"postgresql": sa_psycopg.dialect(), "sqlite": sa_aiosqlite.dialect()}


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A SQLAlchemy statement compiled once for the driver, and how to read its rows back.

    On PostgreSQL its values are given as psycopg takes them; on SQLite each goes
    through its column type's conversion, as SQLAlchemy would send it (aware
    datetimes become commq's UTC text). On SQLite a write runs under the
    process's write lock.
    """

    text: str
    #: The values of the statement's own constants (SQLAlchemy binds them too).
    constants: dict[str, Any]
    names: tuple[str, ...]
    #: (position, converter) of each returned column that SQLAlchemy would convert.
    readers: tuple[tuple[int, Callable[[Any], Any]], ...]
    dialect: Dialect = "postgresql"
    #: SQLite's placeholders are positional: each parameter's name, in their order,
    #: with its type's conversion (None: sent as given).
    positions: tuple[tuple[str, Callable[[Any], Any] | None], ...] = ()

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect = "postgresql") -> DriverStatement:
        """Compile ``statement`` (a select, or DML with or without RETURNING)."""
        target = _DIALECTS[dialect]
        compiled = statement.compile(dialect=target)
        columns = list(getattr(statement, "exported_columns", ()))
        processors = [c.type.result_processor(target, None) for c in columns]
        return cls(
            str(compiled),
            dict(compiled.params),
            tuple(c.name for c in columns),
            tuple((i, read) for i, read in enumerate(processors) if read is not None),
            dialect,
            _positions(compiled) if dialect == "sqlite" else (),
        )

    def bound(self, params: dict[str, Any]) -> Any:
        """The driver's parameters: ``params`` with the constants added."""
        merged = self.constants | params
        if self.dialect == "sqlite":
            values = [merged[name] for name, _ in self.positions]
            for i, (_, convert) in enumerate(self.positions):
                if convert is not None and values[i] is not None:
                    values[i] = convert(values[i])
            return values
        return merged

    async def rows(
        self,
        conn: AsyncConnection,
        params: dict[str, Any],
        write_lock: AbstractAsyncContextManager[Any] | None = None,
    ) -> list[Any]:
        """Run it with ``params`` as a statement of its own; the raw rows.

        On SQLite a write holds ``write_lock`` (``Transactions.write_lock()``).
        """
        if self.dialect == "sqlite":
            return await fetch_all_sqlite(conn, self.text, self.bound(params), write_lock)
        return await fetch_all_postgresql(conn, self.text, self.bound(params))

    def read(self, rows: list[Any]) -> list[dict[str, Any]]:
        """Rows of this statement as dicts, {column name: value read as SQLAlchemy reads it}.

        NULL stays None without a call: commq's column types all read it so.
        """
        names = self.names
        return [dict(zip(names, values, strict=True)) for values in self.values(rows)]

    def values(self, rows: list[Any]) -> list[list[Any]]:
        """Rows of this statement, each column read as SQLAlchemy reads it, by position."""
        readers = self.readers
        out = []
        for row in rows:
            values = list(row)
            for i, read in readers:
                if values[i] is not None:
                    values[i] = read(values[i])
            out.append(values)
        return out


def _positions(compiled: Compiled) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    assert isinstance(compiled, SQLCompiler), "a statement compiles to SQL"
    binds, dialect = compiled.binds, compiled.dialect
    return tuple(
        (name, binds[name].type.bind_processor(dialect)) for name in compiled.positiontup or ()
    )


async def fetch_all_postgresql(conn: AsyncConnection, statement: str, params: Any) -> list[Any]:
    """Run ``statement`` (psycopg placeholders) on ``conn``'s psycopg connection; its rows."""
    async with _on_postgresql(conn) as (driver, running):
        running.text, running.params = statement, params
        cursor = await driver.execute(statement, params)
        return await cursor.fetchall()


async def fetch_each(
    conn: AsyncConnection, statements: Sequence[tuple[DriverStatement, dict[str, Any]]]
) -> list[list[Any]]:
    """Run each (statement, values) as a statement of its own; the rows of each, in order.

    On PostgreSQL in one pipeline: the statements go out together and their answers
    come back together, one round trip where each statement was one.
    """
    if not statements or statements[0][0].dialect == "sqlite":
        return [await statement.rows(conn, params) for statement, params in statements]
    async with _on_postgresql(conn) as (driver, running), driver.pipeline():
        cursors = []
        for statement, params in statements:
            running.text, running.params = statement.text, statement.bound(params)
            cursor = driver.cursor()
            await cursor.execute(running.text, running.params)
            cursors.append(cursor)
        return [await cursor.fetchall() for cursor in cursors]


class _Running:
    """The statement last sent, named in the error if the call fails."""

    text = ""
    params: Any = None


@asynccontextmanager
async def _on_postgresql(
    conn: AsyncConnection,
) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], _Running]]:
    """``conn``'s psycopg connection; its errors raised as SQLAlchemy's."""
    driver: psycopg.AsyncConnection[Any] = driver_connection(conn)
    running = _Running()
    try:
        yield driver, running
    except Exception as error:
        raise as_sqlalchemy(conn, error, running.text, running.params, driver.broken) from error
    finally:
        # Broken, or interrupted mid-statement (cancelled): not fit for the pool.
        if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.invalidate()


async def fetch_all_sqlite(
    conn: AsyncConnection,
    statement: str,
    params: Any,
    write_lock: AbstractAsyncContextManager[Any] | None = None,
) -> list[Any]:
    """Run ``statement`` (``?`` placeholders) on ``conn``'s aiosqlite connection; its rows.

    One trip to aiosqlite's thread. The connection never BEGINs on its own
    (engine.py), so outside ``sqlite_transaction`` the statement is a transaction
    of its own, committed before the call returns; a write statement takes
    SQLite's write lock when it starts, as BEGIN IMMEDIATE would.
    """
    async with write_lock or nullcontext():
        return await SqliteDriver(conn).fetch_all(statement, params)


class SqliteDriver:
    """Statements on ``conn``'s aiosqlite connection, each one trip to its thread."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._driver = driver_connection(conn)

    async def fetch_all(self, statement: str, params: Any = ()) -> list[Any]:
        """Run one statement; its rows."""
        return list(await _on_sqlite(self._conn, self._driver.execute_fetchall, statement, params))

    async def execute_many(self, statement: str, rows: list[Any]) -> None:
        """Run one statement once per row of values."""
        await _on_sqlite(self._conn, self._driver.executemany, statement, rows)

    async def rollback(self) -> None:
        """Roll back the transaction under way, if any."""
        await self._driver.rollback()


@asynccontextmanager
async def sqlite_transaction(
    conn: AsyncConnection, write_lock: AbstractAsyncContextManager[Any]
) -> AsyncIterator[SqliteDriver]:
    """BEGIN IMMEDIATE on ``conn``'s own driver connection, under the process's write
    lock; COMMIT when the block ends, ROLLBACK when it raises."""
    async with write_lock:
        transaction = SqliteDriver(conn)
        await transaction.fetch_all("BEGIN IMMEDIATE")
        try:
            yield transaction
        except BaseException:
            # A connection this fails on is dropped (StandingConnection) or reset by
            # the pool, which rolls back too.
            with contextlib.suppress(Exception):
                await transaction.rollback()
            raise
        await transaction.fetch_all("COMMIT")


async def _on_sqlite(
    conn: AsyncConnection, call: Callable[[str, Any], Awaitable[Any]], statement: str, params: Any
) -> Any:
    try:
        return await call(statement, params)
    except Exception as error:
        raise as_sqlalchemy(conn, error, statement, params, False) from error


def driver_connection(conn: AsyncConnection) -> Any:
    """The driver's own connection under a started SQLAlchemy connection."""
    # The pooled connection connect() just checked out. (get_raw_connection() gives the
    # same, through one more trip into SQLAlchemy's greenlet, for a reconnect that a
    # fresh checkout never needs.)
    sync = conn.sync_connection
    assert sync is not None, "only for a started connection"
    return sync.connection.driver_connection


def refused(error: Exception) -> StatementError:
    """A value the column types refuse, reported as SQLAlchemy reports its bind errors."""
    kind = type(error)
    return StatementError(f"({kind.__module__}.{kind.__name__}) {error}", None, None, error)


def as_sqlalchemy(
    conn: AsyncConnection, error: Exception, statement: str, params: Any, invalidated: bool
) -> BaseException:
    """The driver's ``error`` as SQLAlchemy would have raised it."""
    dialect = conn.dialect
    return DBAPIError.instance(
        statement,
        params,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=invalidated,
        dialect=dialect,
    )
