"""What the CLI says when it cannot use the configured database.

A server that is down, a wrong password, a SQLite file in a folder that does
not exist or a file that is not a database, a schema that needs `commq migrate`:
the operator's to fix, so they get one line naming the database (never its
password) instead of a traceback. Errors in statements (a bug) are not caught
here and keep their traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    InterfaceError,
    OperationalError,
)

from commq.domain.errors import SchemaMismatchError


class DatabaseUnusableError(Exception):
    """The database could not be opened or reached; the message says which and why."""


def shown_url(database_url: str) -> str:
    """The database URL as it may be printed: any password replaced by ***."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "COMMQ_DATABASE_URL"


@contextmanager
def usable_database(database_url: str, *, existing: bool = False) -> Iterator[None]:
    """Run the block; a database it cannot use ends the command with one line (exit 1).

    ``existing``: a SQLite file that is not there is such a database too, not one
    to create (for commands that only read, or work on a migrated schema).
    """
    try:
        if existing:
            require_existing_database(database_url)
        with unusable_database_errors(database_url):
            yield
    except (DatabaseUnusableError, SchemaMismatchError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def require_existing_database(database_url: str) -> None:
    """Raise DatabaseUnusableError when a SQLite URL names a file that does not exist.

    For commands that only read or work on a database someone made: opening the
    URL would create an empty file wherever a typo points.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise DatabaseUnusableError(
            f"there is no database at {url.database}: check COMMQ_DATABASE_URL "
            "(`commq migrate` creates one)"
        )


@contextmanager
def unusable_database_errors(database_url: str) -> Iterator[None]:
    """Turn a database the block could not open or reach into DatabaseUnusableError."""
    try:
        yield
    except DBAPIError as exc:
        if not _about_the_database_itself(exc):
            raise
        raise DatabaseUnusableError(
            f"cannot use the database at {shown_url(database_url)}: {_one_line(exc.orig)}"
        ) from None


def _about_the_database_itself(exc: DBAPIError) -> bool:
    # OperationalError: refused, unknown host or database, bad login, unopenable file;
    # a bare DatabaseError is SQLite's "file is not a database". Its subclasses
    # (IntegrityError, ProgrammingError...) are about a statement, so not ours.
    return isinstance(exc, OperationalError | InterfaceError) or type(exc) is DatabaseError


def _one_line(error: BaseException | None) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__
