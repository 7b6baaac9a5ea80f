"""Another process holding a SQLite database's write lock, as a long write would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@contextmanager
def write_lock_held(path: str, seconds: float) -> Iterator[None]:
    """A process takes ``path``'s write lock (BEGIN IMMEDIATE) and keeps it ``seconds``:
    the block starts once it holds the lock, and ends once the process has let it go."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, path, str(seconds)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        yield
        holder.wait(timeout=seconds + 15)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
