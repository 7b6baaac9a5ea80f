"""Who is looking at a dashboard page, and what their role lets the page offer."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from commq.domain.audit import Principal
from commq.domain.errors import CommqError
from commq.domain.permissions import Permission, allows
from commq.entrypoints.dashboard.sessions import COOKIE, Session, Sessions


class SignInRequiredError(CommqError):
    """Sign in to see this page."""

    def __init__(self, then: str) -> None:
        super().__init__(self.__doc__)
        #: Where to go back to after signing in.
        self.then = then


class PageForbiddenError(CommqError):
    """Your role cannot see this page."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in principal, its session and the session's CSRF token."""

    principal: Principal
    session: Session
    csrf: str

    def can(self, permission: str) -> bool:
        """Whether the role carries ``permission`` (by its DESIGN §4 name)."""
        return allows(self.principal.role, Permission(permission))

    def actions(self, status: str) -> list[str]:
        """The buttons offered on a job in ``status``: only those the role may use."""
        offered = []
        if status in ("failed", "cancelled") and self.can("retryJobs"):
            offered.append("retry")
        if status == "pending" and self.can("cancelJobs"):
            offered.append("cancel")
        if status != "processing" and self.can("deleteJobs"):
            offered.append("delete")
        return offered

    @property
    def platform(self) -> bool:
        """A platform key: it sees every business and may narrow to one."""
        return self.principal.business_id is None


def sessions_of(request: Request) -> Sessions:
    """The app's session signer (installed with the dashboard)."""
    sessions: Sessions = request.app.state.dashboard_sessions
    return sessions


async def current_viewer(request: Request) -> Viewer | None:
    """The viewer behind the request's session cookie, or None."""
    sessions = sessions_of(request)
    session = sessions.read(request.cookies.get(COOKIE))
    principal = await sessions.principal_of(session)
    if principal is None or session is None:
        return None
    return Viewer(principal, session, sessions.csrf_token(session))


class PageAccess:
    """A FastAPI dependency: the viewer, if signed in and allowed ``permission``."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Viewer:
        viewer = await current_viewer(request)
        if viewer is None:
            then = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequiredError(then)
        if not viewer.can(self.permission):
            raise PageForbiddenError()
        return viewer
