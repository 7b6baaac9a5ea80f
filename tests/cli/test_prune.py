"""`commq prune`, run as a user would."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from commq.adapters.store import migrate
from serving import commq


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def env(database: Path, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COMMQ_DATABASE_URL": f"sqlite:///{database}",
        "COMMQ_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def _add_jobs(database: Path, status: str, days_ago: float, count: int) -> None:
    """Jobs created and finished ``days_ago`` (their ids, UUIDv7, carry that time too)."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    stamp = at.replace(tzinfo=None).isoformat(" ", "microseconds")
    ms = int(at.timestamp() * 1000)
    with sqlite3.connect(database) as conn:
        for n in range(count):
            job_id = (
                f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7000-8000-{status[:4].encode().hex()}{n:04d}"
            )
            conn.execute(
                "INSERT INTO jobs (id, business_id, channel, recipient, payload, status, priority,"
                " attempts, max_attempts, seq, run_at, created_at, updated_at, completed_at,"
                " failed_at) VALUES (?, 'acme', 'sms', '+14155550100', '{\"body\":\"hi\"}', ?,"
                " 0, 1, 3, 1, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    status,
                    stamp,
                    stamp,
                    stamp,
                    stamp if status == "completed" else None,
                    stamp if status == "failed" else None,
                ),
            )


def _statuses(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())


def test_prune_deletes_old_completed_jobs_and_says_how_many(
    database: Path, env: dict[str, str]
) -> None:
    _add_jobs(database, "completed", 40, 3)
    _add_jobs(database, "completed", 5, 2)
    _add_jobs(database, "failed", 40, 1)
    done = commq("prune", "--older-than", "30d", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "deleted 3 completed or cancelled jobs"
    assert "deleted 3 so far" in done.stderr
    assert _statuses(database) == {"completed": 2, "failed": 1}
    hours = commq("prune", "--older-than", "72h", env=env)
    assert hours.stdout.strip() == "deleted 2 completed or cancelled jobs"


def test_prune_defaults_to_the_retention_setting(database: Path, env: dict[str, str]) -> None:
    _add_jobs(database, "completed", 3, 1)
    assert commq("prune", env=env).stdout.strip() == "deleted 0 completed or cancelled jobs"
    two_days = commq("prune", env={**env, "COMMQ_RETENTION_DAYS": "2"})
    assert two_days.stdout.strip() == "deleted 1 completed or cancelled job"
    off = commq("prune", env={**env, "COMMQ_RETENTION_DAYS": "0"})
    assert off.returncode == 1 and "--older-than" in off.stderr


@pytest.mark.parametrize("age", ["30x", "thirty", "-1d", "0"])
def test_an_unreadable_age_is_a_clear_error(env: dict[str, str], age: str) -> None:
    done = commq("prune", "--older-than", age, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: --older-than:")
    assert "30d" in done.stderr or "more than 0" in done.stderr
