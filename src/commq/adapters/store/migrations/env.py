"""Alembic environment for commq: runs on the connection that ``migrate()`` passes in.

``commq.adapters.store.migrate`` configures Alembic in code and hands over a
connection already inside a transaction (and, on PostgreSQL, holding the
migration advisory lock); everything here runs in that one transaction.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from commq.adapters.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations with commq.adapters.store.migrate.migrate()")
    _run(connection)


if context.is_offline_mode():
    raise RuntimeError("commq does not support offline (SQL script) migrations")
_main()
