"""Migrations and the schema check, on every backend."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from commq.adapters.store import SqlJobStore, check_schema, make_engine, migrate
from commq.adapters.store.engine import make_sync_engine
from commq.adapters.store.tables import metadata
from commq.domain.errors import SchemaMismatchError

from .support import BUSINESS, enqueue


async def test_migrating_twice_changes_nothing(database_url: str, job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    migrate(database_url)
    migrate(database_url)
    check_schema(database_url)
    assert await job_store.find_job(job.id, BUSINESS) == job


def test_a_database_without_the_schema_is_refused(empty_database_url: str) -> None:
    with pytest.raises(SchemaMismatchError, match="commq migrate"):
        check_schema(empty_database_url)
    migrate(empty_database_url)
    check_schema(empty_database_url)


def test_processes_migrating_at_once_take_turns(empty_database_url: str) -> None:
    script = "import sys; from commq.adapters.store import migrate; migrate(sys.argv[1])"
    runs = [
        subprocess.Popen([sys.executable, "-c", script, empty_database_url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr.decode()
    check_schema(empty_database_url)


def test_a_database_at_another_revision_is_refused(database_url: str) -> None:
    engine = make_sync_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'future'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaMismatchError, match="future"):
        check_schema(database_url)


def test_the_migrations_build_exactly_the_tables_the_code_uses(database_url: str) -> None:
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


async def test_sqlite_connections_are_durable_and_enforce_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": 10_000,
    }
