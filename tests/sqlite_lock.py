"""Another process holding a SQLite database's write lock, as a long write would."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@asynccontextmanager
async def write_lock_held(path: str, seconds: float) -> AsyncIterator[None]:
    """A process takes ``path``'s write lock (BEGIN IMMEDIATE) and keeps it ``seconds``:
    the block starts once it holds the lock, and ends once the process has let it go.

    Waiting for it never blocks the event loop: a worker in the same loop may be holding
    the lock just then, and could not let it go while the loop waited (the holder gave up
    after its 10 s, and the worker's leases ran out meanwhile).
    """
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD, path, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"locked\n"
        yield
        await asyncio.wait_for(holder.wait(), seconds + 15)
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
