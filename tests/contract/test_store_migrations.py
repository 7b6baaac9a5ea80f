"""Migrations and the schema check, on every backend."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from commq.adapters.store import SqlJobStore, check_schema, make_engine, migrate
from commq.adapters.store.engine import make_sync_engine
from commq.adapters.store.migrate import HEAD_REVISION, MIGRATIONS
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


def test_the_schema_check_expects_the_newest_migration() -> None:
    # check_schema compares with HEAD_REVISION, not Alembic's scripts (not loaded to check).
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


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
    if database_url.startswith("postgresql"):
        # Migration 0009: there the jobs' delete trigger takes the attempts instead.
        differences = [d for d in differences if _fk_name(d) != "fk_attempts_job_id_jobs"]
    assert differences == []


def _fk_name(difference: object) -> str | None:
    if isinstance(difference, tuple) and difference[0] == "add_fk":
        return str(difference[1].name)
    return None


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


Step = tuple[Callable[[Config, str], None], str]


def _alembic(url: str, *steps: Step) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = make_sync_engine(url)
    try:
        for move, revision in steps:
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                move(config, revision)
    finally:
        engine.dispose()


def _sqlite_at(path: Path, *steps: Step) -> sqlite3.Connection:
    _alembic(f"sqlite:///{path}", *steps)
    return sqlite3.connect(path, isolation_level=None)


_FIGURES = ("job_counts", "rollups", "attempt_rollups")


def _figures(db: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall()) for table in _FIGURES}


def _life_of_jobs(db: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Jobs enqueued, claimed, tried, completed, failed, retried, moved and deleted."""
    day = "2026-11-27 "
    for n, (business, channel) in enumerate([("acme", "email"), ("acme", "sms"), ("zen", "email")]):
        for k in range(4):
            at = f"{day}{10 + k:02d}:{n * 7:02d}:30.000000"
            db.execute(
                "INSERT INTO jobs (id, business_id, channel, recipient, payload, status, priority,"
                " attempts, max_attempts, seq, run_at, created_at, updated_at)"
                " VALUES (?, ?, ?, 'r', '{}', 'pending', 0, 0, 3, 0, ?, ?, ?)",
                (f"j{n}{k}", business, channel, at, at, at),
            )
    db.execute("UPDATE jobs SET status = 'processing', started_at = updated_at")
    outcomes = ["succeeded", "transient_error", "permanent_error", "ambiguous"]
    for n in range(3):
        for k in range(4):
            db.execute(
                "INSERT INTO attempts (job_id, seq, business_id, attempt, started_at, finished_at,"
                " duration_ms, outcome, provider) SELECT id, 1, business_id, 1, started_at, ?,"
                " ?, ?, ? FROM jobs WHERE id = ?",
                (
                    f"{day}{12 + k:02d}:{n:02d}:59.500000",
                    250 + k,
                    outcomes[k],
                    ["smtp", "sendgrid"][k % 2],
                    f"j{n}{k}",
                ),
            )
    db.execute(
        "UPDATE jobs SET status = 'completed', provider = 'smtp', completed_at = ?"
        " WHERE id LIKE '%0' OR id LIKE '%3'",
        (f"{day}15:00:00.000000",),
    )
    db.execute(
        "UPDATE jobs SET status = 'failed', error_type = 'permanent', failed_at = ?"
        " WHERE id LIKE '%2'",
        (f"{day}16:30:00.000000",),
    )
    db.execute("UPDATE jobs SET status = 'pending', provider = 'sendgrid' WHERE id LIKE '%1'")
    db.execute("UPDATE jobs SET channel = 'webhook' WHERE id = 'j11'")
    db.execute("DELETE FROM attempts WHERE job_id = 'j00'")
    db.execute("DELETE FROM jobs WHERE id = 'j00'")
    return _figures(db)


def test_sqlite_triggers_of_0006_keep_the_figures_those_of_0002_kept(tmp_path: Path) -> None:
    before = _sqlite_at(tmp_path / "0005.db", (command.upgrade, "0005"))
    after = _sqlite_at(tmp_path / "head.db", (command.upgrade, "head"))
    try:
        kept_before, kept_after = _life_of_jobs(before), _life_of_jobs(after)
    finally:
        before.close()
        after.close()
    assert all(kept_after[table] for table in _FIGURES)
    assert kept_after == kept_before


def test_the_sqlite_triggers_migrate_down_and_up_again(tmp_path: Path) -> None:
    path = tmp_path / "commq.db"
    steps: list[Step] = [(command.upgrade, "head"), (command.downgrade, "0005")]
    down = _sqlite_at(path, *steps)
    try:
        triggers = down.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    finally:
        down.close()
    # Back at 0005, the triggers are 0002's again (a GROUP BY per row).
    assert sum("GROUP BY" in sql for (sql,) in triggers) == 4
    _alembic(f"sqlite:///{path}", (command.upgrade, "head"))
    check_schema(f"sqlite:///{path}")


def test_the_index_and_trigger_changes_of_0007_and_0008_go_down_and_up(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    _alembic(url, (command.upgrade, "head"), (command.downgrade, "0006"))
    assert "communication_id IS NOT NULL" not in _index_sql(url)
    if url.startswith("postgresql"):
        assert "SELECT j.channel" not in _attempts_trigger_body(url)
    _alembic(url, (command.upgrade, "head"))
    check_schema(url)
    assert "communication_id IS NOT NULL" in _index_sql(url)
    if url.startswith("postgresql"):
        assert "SELECT j.channel" in _attempts_trigger_body(url)


def test_0009_moves_the_attempts_cascade_into_the_delete_trigger_and_back(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    postgresql = url.startswith("postgresql")
    _alembic(url, (command.upgrade, "head"))
    assert _attempts_foreign_keys(url) == (0 if postgresql else 1)
    _alembic(url, (command.downgrade, "0008"))
    assert _attempts_foreign_keys(url) == 1
    if postgresql:
        assert "attempts" not in _function_body(url, "commq_jobs_deleted")
    _alembic(url, (command.upgrade, "head"))
    check_schema(url)
    if postgresql:
        assert "DELETE FROM attempts" in _function_body(url, "commq_jobs_deleted")


def _attempts_foreign_keys(url: str) -> int:
    query = (
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'attempts'::regclass AND contype = 'f'"
        if url.startswith("postgresql")
        else "SELECT count(*) FROM pragma_foreign_key_list('attempts')"
    )
    return int(str(_scalar(url, query)))


def _function_body(url: str, name: str) -> str:
    return str(_scalar(url, f"SELECT prosrc FROM pg_proc WHERE proname = '{name}'"))


def _index_sql(url: str) -> str:
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_jobs_business_communication'"
        if url.startswith("postgresql")
        else "SELECT sql FROM sqlite_master WHERE name = 'ix_jobs_business_communication'"
    )
    return str(_scalar(url, query))


def _attempts_trigger_body(url: str) -> str:
    return _function_body(url, "commq_attempts_inserted")


def _scalar(url: str, query: str) -> object:
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(query)).scalar_one()
    finally:
        engine.dispose()
