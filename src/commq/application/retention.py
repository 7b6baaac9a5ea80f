"""Retention and upkeep: old finished jobs go, counters stay compact.

Completed and cancelled jobs older than the limit are deleted in small
batches (their attempts with them); failed, pending and processing jobs,
the rollups and the audit trail stay. Every batch is idempotent, so any
number of processes may run the periodic pass at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from commq.application.ports import RetentionStore
from commq.domain.operations import CHUNK_SIZE

log = logging.getLogger("commq.retention")


class Retention:
    """Prunes old finished jobs and compacts the counters."""

    def __init__(self, store: RetentionStore, batch_size: int = CHUNK_SIZE) -> None:
        self._store = store
        self._batch_size = batch_size

    async def prune(
        self, older_than: timedelta, progress: Callable[[int], None] | None = None
    ) -> int:
        """Delete completed and cancelled jobs finished more than ``older_than`` ago.

        Calls ``progress`` with the running total after each batch that deleted
        something. Returns how many jobs were deleted.
        """
        total, after = 0, None
        while True:
            batch = await self._store.prune_batch(older_than, self._batch_size, after)
            total += batch.deleted
            if batch.deleted and progress is not None:
                progress(total)
            if batch.next_after is None:
                return total
            after = batch.next_after
            await asyncio.sleep(0)  # one batch at a time; other tasks run in between

    async def run_periodically(
        self, keep: timedelta | None, interval: float, prune_every: int
    ) -> None:
        """Compact every ``interval`` seconds; prune every ``prune_every``-th pass.

        ``keep`` None: never prune. Runs until cancelled; a failed pass is
        logged and retried on the next one.
        """
        passes = 0
        while True:
            await asyncio.sleep(interval)
            try:
                await self._store.compact()
                if keep is not None and passes % prune_every == 0:
                    deleted = await self.prune(keep)
                    if deleted:
                        log.info("retention: deleted %d jobs finished before %s ago", deleted, keep)
            except Exception:
                log.exception("retention pass failed; trying again next time")
            passes += 1
