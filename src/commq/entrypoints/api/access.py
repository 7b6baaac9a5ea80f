"""Per-route permissions: every route under the prefix declares one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection

from commq.application.scope import require
from commq.domain.audit import Principal
from commq.domain.errors import PermissionDeniedError
from commq.domain.permissions import Permission

#: WebSocket close code for "authenticated, but not allowed" (the 403 of a socket).
WS_FORBIDDEN = 4403


class PermissionDependency:
    """A FastAPI dependency that returns the caller after checking ``permission``.

    It is a class, not a closure, so a test can find the permission of every route.
    ``__call__`` is async although it awaits nothing: FastAPI runs a plain function
    dependency in its thread pool, two thread switches on every request.
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, connection: HTTPConnection) -> Principal:
        principal: Principal = connection.state.principal
        try:
            require(principal, self.permission)
        except PermissionDeniedError as exc:
            if connection.scope["type"] == "websocket":
                # A socket has no 403 answer: it is closed with the matching code.
                raise WebSocketException(WS_FORBIDDEN, str(exc)) from None
            raise
        return principal


def requires(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """The dependency for routes needing ``permission``."""
    return PermissionDependency(permission)
