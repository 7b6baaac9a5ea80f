"""One statement straight on the driver's connection, for the hottest statements.

SQLAlchemy's execute costs more than a small statement does on PostgreSQL: a trip
into its greenlet, compiled-cache lookups, and a Python call per column of every
row it reads back. The enqueue, the worker's claim and its result write skip it:
their text is fixed (compiled once, or written by hand), and the only conversions
their rows need are those of commq's own column types, applied here. Errors still
come out as SQLAlchemy's (``IntegrityError``, ...), like those of every other store
call, and a connection left mid-transaction is not pooled again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql import psycopg as sa_psycopg
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

_POSTGRESQL = sa_psycopg.dialect()


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A SQLAlchemy statement compiled once for psycopg, and how to read its rows back."""

    text: str
    #: The values of the statement's own constants (SQLAlchemy binds them too).
    constants: dict[str, Any]
    names: tuple[str, ...]
    #: (position, converter) of each returned column that SQLAlchemy would convert.
    readers: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def compile(cls, statement: Executable) -> DriverStatement:
        """Compile ``statement`` (a select or a DML ... RETURNING) for PostgreSQL."""
        compiled = statement.compile(dialect=_POSTGRESQL)
        columns = list(getattr(statement, "exported_columns", ()))
        processors = [c.type.result_processor(_POSTGRESQL, None) for c in columns]
        return cls(
            str(compiled),
            dict(compiled.params),
            tuple(c.name for c in columns),
            tuple((i, read) for i, read in enumerate(processors) if read is not None),
        )

    async def rows(self, conn: AsyncConnection, params: dict[str, Any]) -> list[Any]:
        """Run it with ``params`` (its constants added); the raw rows."""
        return await fetch_all_postgresql(conn, self.text, self.constants | params)

    async def mappings(self, conn: AsyncConnection, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run it; each row as {column name: value read as SQLAlchemy reads it}.

        NULL stays None without a call: commq's column types all read it so.
        """
        names, readers = self.names, self.readers
        out = []
        for row in await self.rows(conn, params):
            values = list(row)
            for i, read in readers:
                if values[i] is not None:
                    values[i] = read(values[i])
            out.append(dict(zip(names, values, strict=True)))
        return out


async def fetch_all_postgresql(conn: AsyncConnection, statement: str, params: Any) -> list[Any]:
    """Run ``statement`` (psycopg placeholders) on ``conn``'s psycopg connection; its rows."""
    driver: psycopg.AsyncConnection[Any] = driver_connection(conn)
    try:
        cursor = await driver.execute(statement, params)
        return await cursor.fetchall()
    except Exception as error:
        raise as_sqlalchemy(conn, error, statement, params, driver.broken) from error
    finally:
        # Broken, or interrupted mid-statement (cancelled): not fit for the pool.
        if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.invalidate()


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
