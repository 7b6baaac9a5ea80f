"""Schema migrations: apply them (``commq migrate``, ``commq serve``) or check them (workers).

Alembic is configured in code, so no alembic.ini is needed at run time. On
PostgreSQL the upgrade runs under a transaction-scoped advisory lock, so two
processes migrating at once take turns and the second finds nothing to do.

Only migrating loads Alembic (about 0.4 s on a 2-core machine): the check reads
Alembic's version table itself and compares it with HEAD_REVISION, which a test
holds equal to the newest migration's revision.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from commq.adapters.store.engine import dialect_of, make_sync_engine
from commq.domain.errors import SchemaMismatchError

if TYPE_CHECKING:
    from alembic.config import Config

#: The Alembic script directory.
MIGRATIONS = Path(__file__).with_name("migrations")

#: The newest migration's revision: the schema this version of commq works on.
HEAD_REVISION = "0009"

#: Where Alembic keeps the revision a database is at.
_VERSION_TABLE = "alembic_version"

#: pg_advisory_xact_lock key of migrations ("commq" in ASCII); held until commit.
MIGRATION_LOCK_KEY = 0x636F6D6D71


def revision_module(file_name: str) -> ModuleType:
    """An earlier migration's module, for a later one that re-runs its SQL to go down.

    Migration files are not an importable package, so each is loaded from its path.
    """
    path = MIGRATIONS / "versions" / file_name
    spec = importlib.util.spec_from_file_location(f"commq_revision_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(database_url: str) -> None:
    """Upgrade the database to the newest schema; a no-op when it is there already."""
    from alembic import command

    config = _config()
    engine = make_sync_engine(database_url)
    try:
        with engine.begin() as connection:
            if dialect_of(database_url) == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def check_schema(database_url: str) -> None:
    """Raise SchemaMismatchError unless the database is at the newest schema."""
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            current: set[str] = set()
            if inspect(connection).has_table(_VERSION_TABLE):
                read = text(f"SELECT version_num FROM {_VERSION_TABLE}")
                current = set(connection.execute(read).scalars())
    finally:
        engine.dispose()
    if current != {HEAD_REVISION}:
        found = ", ".join(sorted(current)) or "no schema"
        raise SchemaMismatchError(
            f"The database schema ({found}) does not match this version of commq "
            f"({HEAD_REVISION}); run `commq migrate`."
        )
