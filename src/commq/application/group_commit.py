"""Group commit: many concurrent callers' writes share one transaction.

A worker finishes dozens of sends in the same instant; writing each result in
its own transaction costs a commit (an fsync) and several round trips per job.
Here every caller hands its item over and waits; one flusher writes whatever
has gathered in one call, and while that write runs the next callers gather
for the one after. Nobody waits on a timer: a lone caller is written at once,
and under load a batch is simply everything that arrived during the previous
write. A caller returns only once its own item is durable (or failed), exactly
as with a write of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")

WriteMany = Callable[[Sequence[Item]], Awaitable[list[Answer]]]


class GroupCommit(Generic[Item, Answer]):
    """Writes items in shared batches through ``write_many`` (one answer per item, in order)."""

    def __init__(self, write_many: WriteMany[Item, Answer], max_batch: int = 500) -> None:
        self._write_many = write_many
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, item: Item) -> Answer:
        """Write ``item`` with whatever else is waiting; returns its answer or raises the error.

        Cancelling the caller does not take the item back: it is written (or
        fails) with its batch, as a write already sent to the database would be.
        (Only the caller's answer is cancelled, and the flusher skips answers
        that are done: the item stays in its batch without a shield around it.)
        """
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await answer

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: len(batch)]
                await self._write_batch(batch)
        finally:
            self._flusher = None
            # Left over only when the flusher itself was cancelled (shutdown).
            stranded, self._waiting = self._waiting, []
            _fail(stranded, RuntimeError("the write was cancelled"))

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        try:
            answers = await self._write_many([item for item, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for {len(batch)} items")
        except BaseException as exc:  # every caller of the batch sees the failure
            _fail(batch, exc if isinstance(exc, Exception) else RuntimeError("write cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)


def _fail(waiting: Sequence[tuple[object, asyncio.Future[Answer]]], error: Exception) -> None:
    for _, future in waiting:
        if not future.done():
            future.set_exception(error)
            # Marked as seen: a caller cancelled meanwhile never reads it.
            future.exception()
