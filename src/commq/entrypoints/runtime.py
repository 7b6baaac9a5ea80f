"""Process-wide tuning for the long-running commands (`commq serve`, `commq worker`)."""

from __future__ import annotations

import gc

#: Allocations (net) between two passes of the cyclic garbage collector over the
#: youngest objects. CPython's 700 made a worker collect about 1,150 times per 50,000
#: jobs sent; nearly everything a job allocates is freed by reference counting long
#: before a pass, so fewer passes find the same garbage for less work.
YOUNG_COLLECTION_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """Call once start-up is done: what exists now lives as long as the process.

    ``gc.freeze()`` keeps those objects (modules, classes, the app and its
    routes, SQLAlchemy's metadata) out of every later collection, so a full
    collection walks only what the process made since; before, each took about
    60 ms on a worker and ran every 5,000 or so jobs. Garbage made before the
    freeze is collected first, so none of it is kept for good.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)
