"""Per-route permissions: every route under the prefix declares one."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from commq.application.scope import require
from commq.domain.audit import Principal
from commq.domain.permissions import Permission


class PermissionDependency:
    """A FastAPI dependency that returns the caller after checking ``permission``.

    It is a class, not a closure, so a test can find the permission of every route.
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(self, request: Request) -> Principal:
        principal: Principal = request.state.principal
        require(principal, self.permission)
        return principal


def requires(permission: Permission) -> Callable[[Request], Principal]:
    """The dependency for routes needing ``permission``."""
    return PermissionDependency(permission)
