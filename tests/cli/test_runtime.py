"""The long-running commands settle the garbage collector once their start-up is done."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from commq.entrypoints import cli, worker
from commq.entrypoints.settings import load_settings

_SETTLE = """
import gc, weakref
from commq.entrypoints.runtime import YOUNG_COLLECTION_THRESHOLD, settle_garbage_collector

class Node:
    pass

cycle = Node()
cycle.itself = cycle
collected = weakref.ref(cycle)
del cycle
before = gc.get_threshold()
settle_garbage_collector()
print(collected() is None)
print(gc.get_freeze_count() > 0)
print(gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:]))
"""


def test_settling_collects_the_garbage_freezes_the_rest_and_collects_young_objects_less_often() -> (
    None
):
    # In a process of its own: freezing is for good, and this one runs the other tests.
    done = subprocess.run(
        [sys.executable, "-c", _SETTLE], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.split() == ["True", "True", "True"]


class _Stop(Exception):
    """Raised by the spy in place of serving."""


def test_serve_settles_the_collector_after_building_the_app_and_before_serving(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    steps: list[str] = []
    monkeypatch.setenv("COMMQ_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
    monkeypatch.setenv("COMMQ_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setattr(cli.serving, "settle_garbage_collector", lambda: steps.append("settle"))

    def serve_app(app: Any, *options: Any) -> bool:
        steps.append("serve")
        return True

    monkeypatch.setattr("commq.entrypoints.api.server.serve_app", serve_app)

    result = CliRunner().invoke(cli.app, ["serve", "--no-worker"])

    assert result.exit_code == 0, result.output
    assert steps == ["settle", "serve"]


def test_the_worker_settles_the_collector_once_started_and_still_shuts_down_cleanly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    environ = {"COMMQ_DATABASE_URL": url, "COMMQ_OUTBOX_DIR": str(tmp_path / "outbox")}
    from commq.adapters.store import migrate

    migrate(url)
    settled: list[bool] = []

    def settle() -> None:
        settled.append(True)
        raise _Stop  # instead of dispatching forever: run_worker's clean-up must still run

    monkeypatch.setattr(worker, "settle_garbage_collector", settle)

    with pytest.raises(_Stop):
        asyncio.run(worker.run_worker(load_settings(environ=environ)))

    assert settled == [True]
