"""Fixtures of the CLI tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment on this test's database (on each backend), no other COMMQ_*.

    Modules that need another database (a file of their own, none at all) define their own.
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COMMQ_")}
    return {
        **environ,
        "COMMQ_DATABASE_URL": database_url,
        "COMMQ_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
