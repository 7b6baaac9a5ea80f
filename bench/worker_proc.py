"""A commq worker in its own process, as `commq worker` runs it, with a no-op provider.

``python -m bench.worker_proc drain URL MAX_SECONDS``: work until nothing is due (or
stop claiming after MAX_SECONDS), then print one JSON line {"sent", "seconds", "rss_mb",
"gc_seconds", "gc_collections"} (the garbage collector's time and collections by
generation over the whole process, start-up included).
``python -m bench.worker_proc latency URL N TIMEOUT``: print "ready" once idle and
listening, then stop after N sends (or TIMEOUT s) and print {"delays_ms": [...], "rss_mb"}.

Everything but the provider is the production wiring of ``bootstrap.build`` at the
default settings (concurrency 100, claim batch 100, 60 s lease, LISTEN/NOTIFY on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable

from bench.workload import NoopSender, StampingSender, peak_rss_mb, settings_for, use_sender
from commq.entrypoints.bootstrap import Container, build
from commq.entrypoints.runtime import settle_garbage_collector


class _CollectorTime:
    """Seconds the cyclic garbage collector ran, and its collections by generation."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.collections[info["generation"]] += 1


_COLLECTOR = _CollectorTime()


async def _container(url: str, sender: NoopSender) -> Container:
    container = await build(settings_for(url))
    use_sender(container, sender)
    settle_garbage_collector()  # as `commq worker` does once it is built
    return container


async def drain(url: str, max_seconds: float) -> dict[str, float]:
    """Send every due job with a default-settings dispatcher; report count, time and peak RSS."""
    container = await _container(url, NoopSender())
    try:
        dispatcher = container.dispatcher()
        asyncio.get_running_loop().call_later(max_seconds, dispatcher.stop)
        started = time.perf_counter()
        sent = await dispatcher.run(until_idle=True)
        seconds = time.perf_counter() - started
    finally:
        await container.close()
    return {
        "sent": sent,
        "seconds": seconds,
        "rss_mb": peak_rss_mb(),
        # The whole process's, start-up included.
        "gc_seconds": _COLLECTOR.seconds,
        "gc_collections": _COLLECTOR.collections,
    }


async def latency(url: str, count: int, timeout: float) -> dict[str, object]:
    """Run an idle worker; report each job's delay from enqueue (payload t) to send start."""
    sender = StampingSender()
    container = await _container(url, sender)
    dispatcher = container.dispatcher()
    worker = asyncio.create_task(dispatcher.run())
    try:
        await _until(lambda: bool(getattr(container.wakeup, "listening", True)), 10)
        await asyncio.sleep(1.0)  # let the first claim find nothing: the worker is idle
        print("ready", flush=True)
        await _until(lambda: len(sender.delays_ms) >= count, timeout)
    finally:
        dispatcher.stop()
        await worker
        await container.close()
    return {"delays_ms": sender.delays_ms, "rss_mb": peak_rss_mb()}


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    # Polling a condition, bounded: neither the sender nor the listener offers an event.
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def main(argv: list[str]) -> None:
    """Entry point of the child process."""
    mode, url, *rest = argv
    if mode == "drain":
        result: object = asyncio.run(drain(url, float(rest[0])))
    else:
        result = asyncio.run(latency(url, int(rest[0]), float(rest[1])))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
