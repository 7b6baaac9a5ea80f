"""Group commit: concurrent writes share batches, and every caller gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from commq.application.group_commit import GroupCommit


class Recorder:
    """A write_many that records its batches and can be held open or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_with: Exception | None = None

    async def write_many(self, items: Sequence[int]) -> list[str]:
        self.batches.append(list(items))
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [f"ok-{item}" for item in items]


async def test_a_lone_write_goes_at_once_and_gets_its_answer() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.write_many)
    assert await asyncio.wait_for(commit.write(1), 1) == "ok-1"
    assert recorder.batches == [[1]]


async def test_writes_arriving_together_share_one_batch_in_order() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.write_many)
    answers = await asyncio.gather(*(commit.write(i) for i in range(10)))
    assert answers == [f"ok-{i}" for i in range(10)]
    assert recorder.batches == [list(range(10))]


async def test_writes_arriving_during_a_write_gather_for_the_next_one() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    commit = GroupCommit(recorder.write_many)
    first = asyncio.create_task(commit.write(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = [asyncio.create_task(commit.write(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    recorder.gate.set()
    assert await asyncio.gather(first, *later) == [f"ok-{i}" for i in range(6)]
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]


async def test_batches_never_exceed_the_limit() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.write_many, max_batch=4)
    await asyncio.gather(*(commit.write(i) for i in range(10)))
    assert [len(b) for b in recorder.batches] == [4, 4, 2]


async def test_a_failed_write_fails_every_caller_of_its_batch_and_the_next_batch_goes_on() -> None:
    recorder = Recorder()
    recorder.fail_with = ConnectionError("database down")
    commit = GroupCommit(recorder.write_many)
    outcomes = await asyncio.gather(*(commit.write(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    recorder.fail_with = None
    assert await commit.write(9) == "ok-9"


async def test_a_cancelled_caller_does_not_take_its_item_out_of_the_batch() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    commit = GroupCommit(recorder.write_many)
    caller = asyncio.create_task(commit.write(7))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    recorder.gate.set()
    assert await commit.write(8) == "ok-8"
    assert recorder.batches == [[7], [8]]


async def test_a_write_many_that_answers_the_wrong_number_of_items_fails_the_batch() -> None:
    async def short(items: Sequence[int]) -> list[str]:
        return ["only one"]

    commit = GroupCommit(short)
    outcomes = await asyncio.gather(commit.write(1), commit.write(2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
