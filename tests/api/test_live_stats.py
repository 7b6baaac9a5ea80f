"""GET /stats/stream (SSE) and WS /ws over a real server: auth, scope, pushes, idle cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from commq.domain.jobs import QueueStats
from commq.entrypoints.api.live_routes import make_hub
from commq.entrypoints.settings import Settings

from .conftest import Api
from .live_server import LiveServer, live_server

STREAM = "/communication-queue/stats/stream"
STATS = "/communication-queue/stats"
SOCKET = "/communication-queue/ws"


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with live_server(settings) as running:
        yield running


class Events:
    """The ``stats`` events of one SSE response, read on demand."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, count: int = 1) -> list[dict[str, Any]]:
        """The next ``count`` events (at most 10 s)."""
        found: list[dict[str, Any]] = []
        event = None
        async with asyncio.timeout(10):
            async for line in self._lines:
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "stats":
                    found.append(json.loads(line.removeprefix("data: ")))
                    if len(found) == count:
                        return found
        raise AssertionError(f"the stream ended after {len(found)} events")


async def stats_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of a response."""
    return await Events(response).next(count)


async def enqueue(server: LiveServer, who: str, business: str | None = None) -> None:
    body = {"channel": "sms", "recipient": "+14155550100", "payload": {"body": "hi"}}
    if business is not None:
        body["businessId"] = business
    async with httpx.AsyncClient(base_url=server.http) as client:
        response = await client.post(
            "/communication-queue/jobs", json=body, headers=server.as_(who)
        )
        assert response.status_code == 201, response.text


async def test_the_stream_sends_the_stats_body_as_a_stats_event(server: LiveServer) -> None:
    await enqueue(server, "acme_producer")
    async with httpx.AsyncClient(base_url=server.http) as client:
        expected = (await client.get(STATS, headers=server.as_("acme_support"))).json()
        async with client.stream("GET", STREAM, headers=server.as_("acme_support")) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            [first] = await stats_events(response, 1)
    # The age of the due job grows between the two reads; everything else is equal.
    age = "oldestPendingAgeSeconds"
    assert 0 <= first.pop(age) - expected.pop(age) < 5
    assert first == expected
    assert first["pending"] == 1


async def test_a_change_is_pushed_without_asking(server: LiveServer) -> None:
    async with (
        httpx.AsyncClient(base_url=server.http) as client,
        client.stream("GET", STREAM, headers=server.as_("acme_manager")) as response,
    ):
        events = Events(response)
        [before] = await events.next()
        await enqueue(server, "acme_producer")
        [after] = await events.next()
    assert (before["pending"], after["pending"]) == (0, 1)


async def test_each_business_streams_its_own_stats(server: LiveServer) -> None:
    await enqueue(server, "acme_producer")
    await enqueue(server, "globex_producer")
    await enqueue(server, "globex_producer")
    async with httpx.AsyncClient(base_url=server.http) as client:
        streams = {
            "acme_admin": (STREAM, "acme_admin"),
            "globex_admin": (STREAM, "globex_admin"),
            "platform": (f"{STREAM}?businessId=globex", "admin"),
            "everything": (STREAM, "admin"),
        }
        pending = {}
        for name, (path, who) in streams.items():
            async with client.stream("GET", path, headers=server.as_(who)) as response:
                [event] = await stats_events(response, 1)
                pending[name] = event["pending"]
    assert pending == {"acme_admin": 1, "globex_admin": 2, "platform": 2, "everything": 3}


@pytest.mark.parametrize(
    ("who", "query", "status"),
    [
        (None, "", 401),
        ("acme_producer", "", 403),
        ("acme_support", "?businessId=globex", 403),
    ],
    ids=["no key", "producer", "other business"],
)
async def test_the_stream_is_authenticated_and_scoped_like_stats(
    api: Api, who: str | None, query: str, status: int
) -> None:
    headers = api.as_(who) if who else {}
    response = await api.client.get(STREAM + query, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"10 s passed before {what}")


def _feed_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("commq-live-stats")]


def _count_stats_calls(server: LiveServer) -> list[str | None]:
    calls: list[str | None] = []
    store = server.container.jobs
    real: Callable[[str | None], Awaitable[QueueStats]] = store.stats

    async def counted(business_id: str | None) -> QueueStats:
        calls.append(business_id)
        return await real(business_id)

    store.stats = counted  # type: ignore[method-assign]  # count the store's own work
    return calls


async def test_fifty_idle_clients_of_one_business_cost_one_computation_per_tick(
    server: LiveServer,
) -> None:
    tick = 0.2
    server.app.state.stats_hub = hub = make_hub(server.container, interval=tick)
    calls = _count_stats_calls(server)
    limits = httpx.Limits(max_connections=60)
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.http, limits=limits)
        )
        streams = [
            await stack.enter_async_context(
                client.stream("GET", STREAM, headers=server.as_("acme_support"))
            )
            for _ in range(50)
        ]
        # Each reader stays referenced: a collected line iterator closes its stream.
        readers = [Events(s) for s in streams]
        await asyncio.gather(*(r.next() for r in readers))
        calls.clear()
        await asyncio.sleep(10 * tick)
        computed = list(calls)
        assert hub.active_scopes == 1 and len(_feed_tasks()) == 1
        # Every client is still connected and hears of a change.
        await enqueue(server, "acme_producer")
        changed = await asyncio.gather(*(r.next() for r in readers))
        assert all(event["pending"] == 1 for [event] in changed)
    # Ten ticks: about ten computations in all (timer slack allowed), not 50 per tick.
    assert 5 <= len(computed) <= 14, len(computed)
    assert set(computed) == {"acme"}
    await _until(lambda: hub.active_scopes == 0, "every client left")
    await _until(lambda: not _feed_tasks(), "the feed task stopped")


async def ws_stats(socket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10):
        message = await socket.recv()
    assert isinstance(message, str)
    result: dict[str, Any] = json.loads(message)
    return result


async def test_the_socket_pushes_the_stats_body_to_a_bearer_key(server: LiveServer) -> None:
    await enqueue(server, "acme_producer")
    url = server.ws + SOCKET
    async with connect(url, additional_headers=server.as_("acme_support"), proxy=None) as socket:
        first = await ws_stats(socket)
        assert first["pending"] == 1
        await enqueue(server, "acme_producer")
        assert (await ws_stats(socket))["pending"] == 2


async def test_a_browser_offers_its_key_as_a_subprotocol(server: LiveServer) -> None:
    offered = [Subprotocol("commq"), Subprotocol(f"bearer.{server.keys['globex_admin']}")]
    async with connect(server.ws + SOCKET, subprotocols=offered, proxy=None) as socket:
        assert socket.subprotocol == "commq"
        assert set(await ws_stats(socket)) >= {"pending", "failed", "oldestPendingAgeSeconds"}


@pytest.mark.parametrize(
    ("who", "query", "status"),
    [
        (None, "", 401),
        ("nobody", "", 401),
        ("acme_producer", "", 403),
        ("acme_admin", "?businessId=globex", 403),
    ],
    ids=["no key", "unknown key", "producer", "other business"],
)
async def test_a_socket_without_view_stats_on_its_scope_is_refused(
    server: LiveServer, who: str | None, query: str, status: int
) -> None:
    headers = {"Authorization": "Bearer cq_nope"} if who == "nobody" else {}
    if who in server.keys:
        headers = server.as_(who)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws + SOCKET + query, additional_headers=headers, proxy=None):
            pass
    response = refused.value.response
    assert response.status_code == status
    # The handshake is refused as a request would be: problem+json saying why.
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(response.body)
    assert problem["status"] == status and problem["detail"]
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="commq"'


@pytest.mark.parametrize(
    "query", ["?businessId=acme&businessId=globex", "?token=x"], ids=["repeated", "unknown"]
)
async def test_a_socket_with_an_unclear_query_is_refused(server: LiveServer, query: str) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(
            server.ws + SOCKET + query, additional_headers=server.as_("admin"), proxy=None
        ):
            pass


async def test_a_closed_socket_releases_its_feed(server: LiveServer) -> None:
    hub = server.app.state.stats_hub
    async with connect(
        server.ws + SOCKET, additional_headers=server.as_("acme_admin"), proxy=None
    ) as socket:
        await ws_stats(socket)
        assert hub.active_scopes == 1
    await _until(lambda: hub.active_scopes == 0, "the socket's subscription ended")
    await _until(lambda: not _feed_tasks(), "the feed task stopped")
