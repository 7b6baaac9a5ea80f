"""The live stats hub: one computation per scope per tick, shared, and nothing left running."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack

import pytest

from commq.application.live import LiveStatsHub, Subscription
from commq.domain.audit import Principal
from commq.domain.errors import PermissionDeniedError
from commq.domain.permissions import Role

TICK = 0.02


class Source:
    """A snapshot source that counts its calls per scope and serves settable values."""

    def __init__(self) -> None:
        self.calls: Counter[str | None] = Counter()
        self.values: dict[str | None, str] = {}

    async def __call__(self, scope: str | None) -> str:
        self.calls[scope] += 1
        return self.values.get(scope, f"stats of {scope}")


def feed_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("commq-live-stats")]


async def next_of(feed: Subscription[str]) -> str:
    async with asyncio.timeout(2):
        return await anext(feed)


async def test_many_subscribers_of_one_scope_share_one_computation_per_tick() -> None:
    source = Source()
    hub = LiveStatsHub(source, interval=TICK, keepalive=60)
    async with AsyncExitStack() as stack:
        feeds = [await stack.enter_async_context(hub.subscribe("acme")) for _ in range(50)]
        assert [await next_of(f) for f in feeds] == ["stats of acme"] * 50
        await asyncio.sleep(10 * TICK)
        # About one call per tick (timer slack allowed), never one per subscriber.
        assert 2 <= source.calls["acme"] <= 14
        assert hub.active_scopes == 1 and len(feed_tasks()) == 1


async def test_each_scope_gets_its_own_feed_and_its_own_figures() -> None:
    source = Source()
    hub = LiveStatsHub(source, interval=TICK)
    async with hub.subscribe("acme") as acme, hub.subscribe("globex") as globex:
        assert await next_of(acme) == "stats of acme"
        assert await next_of(globex) == "stats of globex"
        assert hub.active_scopes == 2


async def test_a_change_is_published_and_an_unchanged_snapshot_is_not() -> None:
    source = Source()
    hub = LiveStatsHub(source, interval=TICK, keepalive=60)
    async with hub.subscribe(None) as feed:
        assert await next_of(feed) == "stats of None"
        quiet = asyncio.create_task(anext(feed))
        await asyncio.sleep(5 * TICK)
        assert not quiet.done()
        source.values[None] = "changed"
        async with asyncio.timeout(2):
            assert await quiet == "changed"


async def test_an_unchanged_snapshot_is_sent_again_after_the_keepalive() -> None:
    hub = LiveStatsHub(Source(), interval=TICK, keepalive=5 * TICK)
    async with hub.subscribe(None) as feed:
        first = await next_of(feed)
        assert await next_of(feed) == first


async def test_a_slow_subscriber_gets_the_latest_snapshot_not_a_backlog() -> None:
    source = Source()
    hub = LiveStatsHub(source, interval=TICK, keepalive=60)
    async with hub.subscribe(None) as feed:
        await next_of(feed)
        for value in ("one", "two", "three"):
            source.values[None] = value
            await asyncio.sleep(3 * TICK)
        assert await next_of(feed) == "three"


async def test_the_feed_stops_when_its_last_subscriber_leaves() -> None:
    source = Source()
    hub = LiveStatsHub(source, interval=TICK)
    async with hub.subscribe("acme") as first:
        async with hub.subscribe("acme") as second:
            await next_of(second)
        assert hub.active_scopes == 1
        await next_of(first)
    assert hub.active_scopes == 0
    await asyncio.sleep(2 * TICK)
    assert feed_tasks() == []
    calls = source.calls["acme"]
    await asyncio.sleep(5 * TICK)
    assert source.calls["acme"] == calls


async def test_a_failing_source_skips_the_tick_and_the_feed_recovers() -> None:
    failures = iter([RuntimeError("database away")])

    async def flaky(scope: str | None) -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "back"

    hub = LiveStatsHub(flaky, interval=TICK)
    async with hub.subscribe(None) as feed:
        assert await next_of(feed) == "back"


async def test_closing_the_hub_stops_every_feed() -> None:
    hub = LiveStatsHub(Source(), interval=TICK)
    async with hub.subscribe("acme") as feed:
        await next_of(feed)
        await hub.close()
        assert hub.active_scopes == 0 and feed_tasks() == []


def test_watching_needs_view_stats_and_stays_within_the_business() -> None:
    hub = LiveStatsHub(Source())
    support = Principal("k1", "helpdesk", Role.SUPPORT, "acme")
    platform = Principal("k2", "ops", Role.ADMIN, None)
    assert hub.authorize(support, None) == "acme"
    assert hub.authorize(platform, None) is None
    assert hub.authorize(platform, "globex") == "globex"
    with pytest.raises(PermissionDeniedError):
        hub.authorize(support, "globex")
    with pytest.raises(PermissionDeniedError):
        hub.authorize(Principal("k3", "shop", Role.PRODUCER, "acme"), None)


async def test_end_streams_ends_every_subscription_and_every_later_one() -> None:
    hub = LiveStatsHub(Source(), interval=TICK, keepalive=60)
    async with hub.subscribe("acme") as acme:
        assert await next_of(acme) == "stats of acme"
        waiting = asyncio.create_task(next_of(acme))
        await asyncio.sleep(2 * TICK)
        hub.end_streams()
        with pytest.raises(StopAsyncIteration):
            await waiting
    async with hub.subscribe("acme") as late:
        with pytest.raises(StopAsyncIteration):
            await next_of(late)
    assert hub.active_scopes == 0
    await asyncio.sleep(TICK)
    assert feed_tasks() == []
