"""The periodic upkeep every `commq serve` and `commq worker` runs in the background.

Each pass folds the counter slots together (PostgreSQL); every PRUNE_EVERY-th
pass also deletes completed and cancelled jobs older than COMMQ_RETENTION_DAYS
(0 turns that off). Batches are idempotent, so several processes may run it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from commq.entrypoints.bootstrap import Container

#: Seconds between passes (and before the first, so short-lived processes skip it).
INTERVAL = 60.0
#: Prune on every this-many-th pass: at start-up + INTERVAL, then every ten minutes.
PRUNE_EVERY = 10


class Maintenance:
    """Starts and stops the upkeep task of one process."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the passes in the background until stop()."""
        days = self._container.settings.retention_days
        keep = timedelta(days=days) if days > 0 else None
        passes = self._container.retention.run_periodically(keep, INTERVAL, PRUNE_EVERY)
        self._task = asyncio.create_task(passes, name="commq-maintenance")

    async def stop(self) -> None:
        """Cancel the task (a batch in flight is rolled back; the next pass redoes it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
