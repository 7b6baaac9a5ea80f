"""How big each scenario is in the full run and in the quick one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """Sizes and time caps of one run."""

    name: str
    #: Jobs enqueued one per call (application layer, raw, peers) and POST /jobs requests.
    singles: int
    http_singles: int
    #: Batches of 1,000 (application layer, POST /jobs/batch, raw executemany, peers).
    batches: int
    #: Backlog of scenario c (and of the peers' and raw dispatch).
    backlog: int
    #: Seconds after which a dispatching worker stops claiming (commq and peers alike).
    dispatch_cap: float
    latency_jobs: int
    latency_rate: float = 50.0
    #: The 1,000,000-job scenarios d, f, g.
    million: bool = True
    read_samples: int = 200
    read_budget: float = 20.0
    #: Seconds after which a one-at-a-time enqueue loop (in-process or HTTP) stops.
    enqueue_budget: float = 30.0
    #: Drains of c's backlog for commq and each peer and raw loop, alternated, each on a
    #: fresh database; the figure is their median (the issue's anchors are medians of 3).
    dispatch_rounds: int = 3


FULL = Plan(
    "full",
    singles=5000,
    http_singles=5000,
    # 60, not 20: twenty requests over POST /jobs/batch's 16 clients timed mostly the
    # first wave's ramp and the last one's tail (SQLite: 18,900 jobs/s at 20, 21,400-23,300
    # at 60 in back-to-back runs on one machine).
    batches=60,
    backlog=20_000,
    dispatch_cap=60,
    latency_jobs=200,
)
QUICK = Plan(
    "quick",
    singles=1000,
    http_singles=500,
    batches=5,
    backlog=5000,
    dispatch_cap=10,
    latency_jobs=100,
    million=False,
    enqueue_budget=8.0,
    dispatch_rounds=1,
)
