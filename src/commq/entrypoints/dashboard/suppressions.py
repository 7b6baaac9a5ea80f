"""The suppression list page, for admins and managers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from commq.domain.errors import CommqError
from commq.domain.permissions import Permission
from commq.domain.suppression import SuppressionPage
from commq.entrypoints.api.dependencies import container
from commq.entrypoints.api.suppression_routes import suppression_json
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.dashboard.pages import business_of
from commq.entrypoints.dashboard.rendering import render
from commq.entrypoints.dashboard.viewer import PageAccess, Viewer

router = APIRouter(prefix="/dashboard", include_in_schema=False)
App = Annotated[Container, Depends(container)]
Manager = Annotated[Viewer, Depends(PageAccess(Permission.MANAGE_SUPPRESSIONS))]
PAGE_SIZE = 50


@router.get("/suppressions")
async def suppressions(request: Request, viewer: Manager, app: App) -> HTMLResponse:
    """Recipients commq will not send to (hard bounces, spam reports, STOP), with Remove."""
    business = business_of(request, viewer)
    cursor = request.query_params.get("cursor") or None
    problem = None
    try:
        page = await app.suppressions.list(viewer.principal, business, PAGE_SIZE, cursor)
    except CommqError as exc:
        problem, page = str(exc), SuppressionPage([])
    return render(
        request,
        "suppressions.html",
        viewer=viewer,
        business=business,
        cursor=cursor,
        problem=problem,
        entries=[suppression_json(entry) for entry in page.items],
        next_cursor=page.next_cursor,
    )
