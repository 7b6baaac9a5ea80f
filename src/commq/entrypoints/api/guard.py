"""Authentication and body limits, applied before a route sees the request.

This is plain ASGI middleware so that the key is checked before anything else
about the request (even before its body is parsed), as DESIGN §3 requires.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commq.domain.audit import Principal

PREFIX = "/communication-queue"
MIB = 1024 * 1024

Authenticate = Callable[[str], Awaitable[Principal | None]]


class CookieAuth(Protocol):
    """The other way in: the dashboard's session cookie, used only without Authorization."""

    async def principal(self, headers: Mapping[str, str]) -> Principal | None:
        """The principal of a valid session cookie in ``headers``, or None."""
        ...

    def refusal(self, method: str, headers: Mapping[str, str]) -> str | None:
        """Why a cookie-authenticated request is refused (CSRF, cross-site), or None."""
        ...


def body_limit(path: str) -> int:
    """1 MiB for ordinary requests, 16 MiB for batches."""
    return 16 * MIB if path.rstrip("/").endswith("/jobs/batch") else MIB


class GuardMiddleware:
    """Turns the Bearer key into ``scope["state"]["principal"]`` or answers 401/413."""

    def __init__(
        self, app: ASGIApp, authenticate: Authenticate, cookies: CookieAuth | None = None
    ) -> None:
        self._app = app
        self._authenticate = authenticate
        self._cookies = cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(PREFIX):
            await self._app(scope, receive, send)
            return
        principal, refusal = await self._principal(scope)
        if principal is None:
            await _answer(
                scope, send, 401, "A valid API key is required: Authorization: Bearer <key>"
            )
            return
        if refusal is not None:
            await _answer(scope, send, 403, refusal)
            return
        scope.setdefault("state", {})["principal"] = principal
        if _has_nul(scope["path"].encode(), scope.get("query_string", b"")):
            await _answer(scope, send, 422, _NUL_REFUSED)
            return
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            body = await _read_body(receive, body_limit(scope["path"]))
            if body is None:
                await _answer(scope, send, 413, "The request body is too large")
                return
            if _has_nul(body):
                await _answer(scope, send, 422, _NUL_REFUSED)
                return
            receive = _replay(body)
        await self._app(scope, receive, send)

    async def _principal(self, scope: Scope) -> tuple[Principal | None, str | None]:
        """The caller, and why a cookie-authenticated request is refused (None: it is not)."""
        token = _bearer(scope)
        if token:
            return await self._authenticate(token), None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if self._cookies is None or "authorization" in headers:
            return None, None
        principal = await self._cookies.principal(headers)
        if principal is None:
            return None, None
        return principal, self._cookies.refusal(scope.get("method", "GET"), headers)


_NUL_REFUSED = "NUL characters (\\u0000) are not accepted in paths, queries or bodies"


def _has_nul(*parts: bytes) -> bool:
    # PostgreSQL text cannot hold NUL; refusing it here keeps such input a clear 422.
    return any(b"\x00" in p or b"%00" in p or b"\\u0000" in p for p in parts)


#: A browser cannot set Authorization on a WebSocket, so it may offer the key as the
#: subprotocol ``bearer.<key>`` (next to ``commq``, which the server selects): unlike a
#: query string, the header is not written to access logs.
WS_KEY_PROTOCOL = "bearer."


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip() or None
    if scope["type"] == "websocket":
        for protocol in scope.get("subprotocols", ()):
            if protocol.startswith(WS_KEY_PROTOCOL):
                return protocol.removeprefix(WS_KEY_PROTOCOL) or None
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _answer(scope: Scope, send: Send, status: int, detail: str) -> None:
    websocket = scope["type"] == "websocket"
    if websocket and "websocket.http.response" not in scope.get("extensions", {}):
        # A server without the ASGI denial-response extension turns any close
        # before accept into a bare 403; the close code still tells 401 apart.
        await send({"type": "websocket.close", "code": {401: 4401, 403: 4403}.get(status, 1009)})
        return
    titles = {401: "Unauthorized", 403: "Forbidden", 413: "Content Too Large"}
    title = titles.get(status, "Unprocessable Content")
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="commq"'))
    kind = "websocket.http.response" if websocket else "http.response"
    await send({"type": f"{kind}.start", "status": status, "headers": headers})
    await send({"type": f"{kind}.body", "body": payload})
