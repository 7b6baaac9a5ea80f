"""Live stats for streaming clients: one computation per business scope per tick, shared.

Each scope that has subscribers gets one feed: a task that computes the
snapshot every ``interval`` seconds and publishes it when it changed, or when
``keepalive`` seconds passed without a publication. Subscribers only read the
feed's latest snapshot, so a thousand idle clients of one business cost one
query per tick, and a slow client skips snapshots instead of piling them up.
The feed's task stops when its last subscriber leaves. At shutdown,
``end_streams`` ends every subscription, so the streams built on them finish
their responses instead of holding the server until its grace runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar, cast

from commq.application.scope import read_scope, require
from commq.domain.audit import Principal
from commq.domain.permissions import Permission

log = logging.getLogger("commq.live")

T = TypeVar("T")

#: Computes the snapshot of one scope (a business id; None: every business).
SnapshotSource = Callable[[str | None], Awaitable[T]]


class _Feed(Generic[T]):
    """The latest snapshot of one scope and the task that keeps it fresh."""

    def __init__(self, scope: str | None) -> None:
        self.scope = scope
        self.subscribers = 0
        self.version = 0
        self.latest: T | None = None
        #: Set once the server shuts down: subscribers stop iterating.
        self.ended = False
        self._published = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def end(self) -> None:
        """Wake every subscriber one last time; their iteration then stops."""
        self.ended = True
        self._published.set()

    def publish(self, snapshot: T) -> None:
        self.latest = snapshot
        self.version += 1
        # Wake every current waiter at once; later waiters wait on the fresh event.
        published, self._published = self._published, asyncio.Event()
        published.set()

    async def changed(self) -> None:
        await self._published.wait()

    async def run(self, source: SnapshotSource[T], interval: float, keepalive: float) -> None:
        loop = asyncio.get_running_loop()
        published_at = float("-inf")
        while True:
            try:
                snapshot = await source(self.scope)
            except Exception:
                log.exception("live stats for %s: could not compute the snapshot", self.scope)
            else:
                stale = loop.time() - published_at >= keepalive
                if self.version == 0 or stale or snapshot != self.latest:
                    self.publish(snapshot)
                    published_at = loop.time()
            await asyncio.sleep(interval)


class Subscription(Generic[T]):
    """One client's view of a feed: iterate it for each snapshot it has not seen yet."""

    def __init__(self, feed: _Feed[T]) -> None:
        self._feed = feed
        self._seen = 0

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while self._feed.version == self._seen and not self._feed.ended:
            await self._feed.changed()
        if self._feed.ended:
            raise StopAsyncIteration
        self._seen = self._feed.version
        # version > 0 means a snapshot was published; T itself may allow None.
        return cast(T, self._feed.latest)


class LiveStatsHub(Generic[T]):
    """Shares one snapshot feed per business scope among every live client."""

    def __init__(
        self, source: SnapshotSource[T], interval: float = 1.0, keepalive: float = 4.0
    ) -> None:
        self._source = source
        self._interval = interval
        self._keepalive = keepalive
        self._feeds: dict[str | None, _Feed[T]] = {}
        self._ended = False

    @property
    def active_scopes(self) -> int:
        """How many scopes have a running feed (one per scope with subscribers)."""
        return len(self._feeds)

    def authorize(self, principal: Principal, business_id: str | None) -> str | None:
        """The scope a caller may watch, as for /stats; raises PermissionDeniedError."""
        require(principal, Permission.VIEW_STATS)
        return read_scope(principal, business_id)

    @contextlib.asynccontextmanager
    async def subscribe(self, scope: str | None) -> AsyncIterator[Subscription[T]]:
        """Follow one scope's feed (started if needed) until the block exits."""
        if self._ended:
            ended: _Feed[T] = _Feed(scope)
            ended.end()
            yield Subscription(ended)
            return
        feed = self._feeds.get(scope)
        if feed is None:
            feed = self._feeds[scope] = _Feed(scope)
            run = feed.run(self._source, self._interval, self._keepalive)
            feed.task = asyncio.create_task(run, name=f"commq-live-stats:{scope or '*'}")
        feed.subscribers += 1
        try:
            yield Subscription(feed)
        finally:
            feed.subscribers -= 1
            if feed.subscribers == 0 and self._feeds.get(scope) is feed:
                del self._feeds[scope]
                if feed.task is not None:
                    feed.task.cancel()

    def end_streams(self) -> None:
        """End every subscription, and any made from now on: the server is shutting down.

        Live clients would otherwise keep their responses open until the server's
        graceful-shutdown timeout cut them (with a traceback).
        """
        self._ended = True
        for feed in self._feeds.values():
            feed.end()

    async def close(self) -> None:
        """Stop every feed (at shutdown; subscribers are being disconnected anyway)."""
        tasks = [feed.task for feed in self._feeds.values() if feed.task is not None]
        self._feeds.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
