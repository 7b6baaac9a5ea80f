"""Live stats: GET /stats/stream (Server-Sent Events) and the /ws WebSocket.

Both carry the /stats body, built by the same ``schemas.stats_json`` over
``QueueService.stats``, so they follow every field /stats gains. The JSON is
computed and serialised once per business scope per tick by the hub and
shared by every client of that scope.

WebSocket authentication: ``Authorization: Bearer <key>``, or, from a browser
(which cannot set headers on a WebSocket), the subprotocols
``["commq", "bearer.<key>"]``; the server then selects ``commq``. A key in the
query string is not accepted: it would end up in access logs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import StreamingResponse
from starlette.exceptions import WebSocketException

from commq.application.live import LiveStatsHub, Subscription
from commq.domain.audit import Principal
from commq.domain.errors import CommqError
from commq.domain.permissions import Permission, Role
from commq.entrypoints.api import schemas
from commq.entrypoints.api.access import WS_FORBIDDEN, requires
from commq.entrypoints.api.dependencies import BusinessId
from commq.entrypoints.api.strict_route import StrictRoute, query_errors
from commq.entrypoints.bootstrap import Container

router = APIRouter(prefix="/communication-queue", tags=["live"], route_class=StrictRoute)

StatsHub = LiveStatsHub[str]
StatsViewer = Annotated[Principal, Depends(requires(Permission.VIEW_STATS))]

#: Who the hub asks for stats: each subscriber's permission and scope were checked
#: when it subscribed, and the hub only ever asks for such a scope.
HUB_PRINCIPAL = Principal("live-stats", "live stats hub", Role.ADMIN, None)

#: The subprotocol a browser offers next to ``bearer.<key>``; the server selects it.
WS_PROTOCOL = "commq"

#: SSE reconnection delay suggested to clients, in milliseconds.
SSE_RETRY_MS = 3000


def make_hub(container: Container, interval: float = 1.0) -> StatsHub:
    """The hub of one app: /stats JSON per scope, computed at most once per ``interval``."""

    async def snapshot(scope: str | None) -> str:
        body = schemas.stats_json(await container.queue.stats(HUB_PRINCIPAL, scope))
        body["providers"] = await container.circuit_snapshot(scope)
        return json.dumps(body, separators=(",", ":"))

    return LiveStatsHub(snapshot, interval=interval)


def _hub(request: Request) -> StatsHub:
    hub: StatsHub = request.app.state.stats_hub
    return hub


@router.get(
    "/stats/stream",
    summary="Live stats as Server-Sent Events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stats_stream(
    request: Request, who: StatsViewer, business_id: BusinessId = None
) -> StreamingResponse:
    """Event ``stats`` with the /stats body: on every change, and at least every 5 seconds."""
    hub = _hub(request)
    scope = hub.authorize(who, business_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(hub, scope), media_type="text/event-stream", headers=headers)


async def _events(hub: StatsHub, scope: str | None) -> AsyncIterator[str]:
    # Subscribing here, inside the body, means a client that leaves before the
    # first byte never holds a subscription; leaving later cancels this generator.
    async with hub.subscribe(scope) as feed:
        yield f"retry: {SSE_RETRY_MS}\n\n"
        async for body in feed:
            yield f"event: stats\ndata: {body}\n\n"


_SOCKET_PARAMETERS = frozenset({"businessId"})


@router.websocket("/ws", name="stats_socket")
async def stats_socket(
    websocket: WebSocket, who: StatsViewer, business_id: BusinessId = None
) -> None:
    """Pushes the /stats body as a JSON text message on every change, at least every 5 s."""
    # A socket route is not a StrictRoute: the same query check, refused as FastAPI
    # refuses the socket's other bad parameters (closed before accept, code 1008).
    errors = query_errors(websocket.query_params, _SOCKET_PARAMETERS)
    if errors:
        raise WebSocketRequestValidationError(errors)
    hub: StatsHub = websocket.app.state.stats_hub
    try:
        scope = hub.authorize(who, business_id)
    except CommqError as exc:
        raise WebSocketException(WS_FORBIDDEN, str(exc)) from None
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=WS_PROTOCOL if WS_PROTOCOL in offered else None)
    async with hub.subscribe(scope) as feed:
        pusher = asyncio.create_task(_push(websocket, feed))
        try:
            await _until_closed(websocket)
        finally:
            pusher.cancel()
            await asyncio.gather(pusher, return_exceptions=True)


async def _push(websocket: WebSocket, feed: Subscription[str]) -> None:
    async for body in feed:
        await websocket.send_text(body)


async def _until_closed(websocket: WebSocket) -> None:
    # Clients have nothing to say; reading is how a disconnect is noticed at once.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        continue
