"""`commq migrate` says what it is doing and what it did."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from serving import CLI


def migrate(database: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMQ_")}
    env["COMMQ_DATABASE_URL"] = f"sqlite:///{database}"
    return subprocess.run([*CLI, "migrate"], env=env, capture_output=True, text=True, timeout=60)


def test_migrate_names_each_migration_as_it_starts_then_sums_up(tmp_path: Path) -> None:
    first = migrate(tmp_path / "commq.db")
    assert first.returncode == 0, first.stderr
    steps = first.stderr.splitlines()
    assert steps[0].startswith("applying 0001: Initial schema")
    assert all(step.startswith("applying 0") for step in steps), steps
    assert first.stdout.strip() == (
        f"applied {len(steps)} migrations: database at sqlite:///{tmp_path}/commq.db is up to date"
    )
    again = migrate(tmp_path / "commq.db")
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.startswith("nothing to apply: database at")
