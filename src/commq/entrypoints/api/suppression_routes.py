"""GET/DELETE /communication-queue/suppressions: each business's suppressed recipients."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from commq.domain.audit import Principal
from commq.domain.permissions import Permission
from commq.domain.suppression import Suppression
from commq.entrypoints.api.access import requires
from commq.entrypoints.api.dependencies import BusinessId, Cursor, Limit, container
from commq.entrypoints.api.problems import problem
from commq.entrypoints.api.schemas import iso
from commq.entrypoints.api.strict_route import StrictRoute
from commq.entrypoints.bootstrap import Container

router = APIRouter(
    prefix="/communication-queue/suppressions", tags=["suppressions"], route_class=StrictRoute
)
Manager = Annotated[Principal, Depends(requires(Permission.MANAGE_SUPPRESSIONS))]
App = Annotated[Container, Depends(container)]
#: ``/suppressions/`` with nothing after it names no recipient: a 422, not "not suppressed".
Recipient = Annotated[str, Path(min_length=1)]


@router.get("", summary="Suppressed recipients (hard bounces, spam reports, STOP)")
async def list_suppressions(
    who: Manager, app: App, business_id: BusinessId = None, limit: Limit = 50, cursor: Cursor = None
) -> JSONResponse:
    """The caller's suppressed recipients by channel and recipient, paged with nextCursor."""
    page = await app.suppressions.list(who, business_id, limit, cursor)
    items = [suppression_json(s) for s in page.items]
    return JSONResponse({"items": items, "nextCursor": page.next_cursor})


# ``:path``: like a communicationId, a recipient is the caller's text and may hold "/".
@router.get("/{recipient:path}", summary="Whether a recipient is suppressed, and why")
async def get_suppression(
    recipient: Recipient, who: Manager, app: App, business_id: BusinessId = None
) -> JSONResponse:
    """The recipient's entries (one per channel it is suppressed on); 404 when it is not."""
    found = await app.suppressions.find(who, recipient, business_id)
    if not found:
        return _not_suppressed(recipient)
    return JSONResponse({"items": [suppression_json(s) for s in found]})


@router.delete("/{recipient:path}", summary="Send to a suppressed recipient again")
async def delete_suppression(
    recipient: Recipient, who: Manager, app: App, business_id: BusinessId = None
) -> JSONResponse:
    """Remove the recipient from the business's list (every channel); audited."""
    removed = await app.suppressions.delete(who, recipient, business_id)
    if not removed:
        return _not_suppressed(recipient)
    return JSONResponse({"success": True, "message": f"{recipient} is no longer suppressed"})


def _not_suppressed(recipient: str) -> JSONResponse:
    return problem(404, f"{recipient} is not suppressed")


def suppression_json(entry: Suppression) -> dict[str, Any]:
    """The JSON object of one suppression."""
    return {
        "businessId": entry.business_id,
        "channel": entry.channel.value,
        "recipient": entry.recipient,
        "reason": entry.reason.value,
        "jobId": entry.job_id,
        "createdAt": iso(entry.created_at),
    }
