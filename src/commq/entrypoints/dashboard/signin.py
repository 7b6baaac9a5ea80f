"""Sign-in and sign-out: an API key in, a signed session cookie out."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from commq.application.keys import split_key
from commq.domain.permissions import Permission, allows
from commq.entrypoints.api.dependencies import container
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.dashboard.rendering import render
from commq.entrypoints.dashboard.sessions import (
    COOKIE,
    LIFETIME_SECONDS,
    LOGIN_COOKIE,
    cross_site,
)
from commq.entrypoints.dashboard.viewer import current_viewer, sessions_of

router = APIRouter(prefix="/dashboard", include_in_schema=False)
App = Annotated[Container, Depends(container)]
_FORM_LIMIT = 8 * 1024


def safe_then(then: str | None) -> str:
    """Where to go after signing in: a dashboard path, never another site."""
    if then and then.startswith("/dashboard") and "//" not in then and "\\" not in then:
        return then
    return "/dashboard"


def _login_page(request: Request, then: str, error: str | None, status: int) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    page = render(request, "login.html", status, login_token=token, then=then, error=error)
    page.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/dashboard/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return page


@router.get("/login")
async def login_form(request: Request, then: str | None = None) -> Response:
    """The sign-in form (or straight on, when already signed in)."""
    if await current_viewer(request) is not None:
        return RedirectResponse(safe_then(then), 303)
    return _login_page(request, safe_then(then), None, 200)


async def _form(request: Request) -> dict[str, str] | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_LIMIT:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


@router.post("/login")
async def login(request: Request, app: App) -> Response:
    """Check the key; on success set the session cookie and go on."""
    form = await _form(request) or {}
    then = safe_then(form.get("then"))
    expected = request.cookies.get(LOGIN_COOKIE)
    if cross_site(request.headers) or not expected or form.get("csrf") != expected:
        message = "The sign-in form expired or came from another site. Please sign in again."
        return _login_page(request, then, message, 403)
    presented = form.get("key", "").strip()
    principal = await app.keys.authenticate(presented)
    prefix = split_key(presented)
    if principal is None or prefix is None:
        return _login_page(request, then, "That API key is not valid.", 401)
    if not allows(principal.role, Permission.VIEW_JOBS):
        message = f"A {principal.role.value} key cannot use the dashboard: it may only enqueue."
        return _login_page(request, then, message, 403)
    value, _ = sessions_of(request).issue(principal, prefix)
    response = RedirectResponse(then, 303)
    response.set_cookie(
        COOKIE,
        value,
        max_age=LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/dashboard/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Forget the session cookie (the form carries the CSRF token)."""
    form = await _form(request) or {}
    sessions = sessions_of(request)
    session = sessions.read(request.cookies.get(COOKIE))
    if session is not None and (
        cross_site(request.headers) or not sessions.csrf_valid(session, form.get("csrf"))
    ):
        message = "The sign-out form expired or came from another site: sign out from the page."
        return render(request, "error.html", 403, title="Not signed out", message=message)
    response = RedirectResponse("/dashboard/login", 303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
