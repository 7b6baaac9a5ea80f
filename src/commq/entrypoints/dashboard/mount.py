"""Adds the dashboard to the FastAPI app."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from commq.domain.audit import Principal
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.dashboard import audit, pages, signin, suppressions
from commq.entrypoints.dashboard.headers import PageHeadersMiddleware
from commq.entrypoints.dashboard.rendering import STATIC_DIR, render
from commq.entrypoints.dashboard.sessions import Sessions, load_secret
from commq.entrypoints.dashboard.viewer import (
    PageForbiddenError,
    SignInRequiredError,
    current_viewer,
)
from commq.entrypoints.settings import Settings


def install(app: FastAPI, settings: Settings) -> Sessions:
    """Mount the dashboard on ``app``; returns the session signer for the API's guard."""

    async def resolve(key_id: str, prefix: str) -> Principal | None:
        built: Container = app.state.container
        return await built.keys.signed_in(key_id, prefix)

    sessions = Sessions(
        lambda: load_secret(settings.session_secret, settings.database_url), resolve
    )
    app.state.dashboard_sessions = sessions
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(suppressions.router)
    app.include_router(audit.router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.add_exception_handler(SignInRequiredError, _to_sign_in)
    app.add_exception_handler(PageForbiddenError, _forbidden)
    app.add_middleware(PageHeadersMiddleware)
    return sessions


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequiredError)
    sign_in = f"/dashboard/login?then={quote(exc.then, safe='/')}"
    if request.headers.get("HX-Request") == "true":
        # htmx would follow a redirect inside its request and swap the sign-in page's
        # (missing) table into the page, leaving it blank: send the browser there.
        return Response(status_code=204, headers={"HX-Redirect": sign_in})
    return RedirectResponse(sign_in, 303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    viewer = await current_viewer(request)
    role = viewer.principal.role.value if viewer else "your"
    message = f"The {role} role cannot see this page."
    return render(request, "error.html", 403, viewer=viewer, title="Not allowed", message=message)
