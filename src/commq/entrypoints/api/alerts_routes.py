"""GET /communication-queue/alerts: firing and recently resolved alerts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from commq.domain.alerts import Alert
from commq.domain.audit import Principal
from commq.domain.permissions import Permission
from commq.entrypoints.alerting import alert_service
from commq.entrypoints.api import schemas
from commq.entrypoints.api.access import requires
from commq.entrypoints.api.dependencies import AlertLimit, BusinessId, container
from commq.entrypoints.api.strict_route import StrictRoute
from commq.entrypoints.bootstrap import Container

router = APIRouter(prefix="/communication-queue", tags=["alerts"], route_class=StrictRoute)

StatsViewer = Annotated[Principal, Depends(requires(Permission.VIEW_STATS))]
App = Annotated[Container, Depends(container)]


class AlertOut(BaseModel):
    """One alert (``businessId`` null: about every business together)."""

    id: str
    rule: str
    businessId: str | None
    status: str
    threshold: float
    value: float
    message: str
    startedAt: str
    updatedAt: str
    lastNotifiedAt: str | None
    resolvedAt: str | None
    notifications: int


class AlertListOut(BaseModel):
    """Firing alerts and those resolved in the last 24 hours, newest first."""

    items: list[AlertOut]


@router.get("/alerts", response_model=AlertListOut, summary="Firing and recently resolved alerts")
async def list_alerts(
    who: StatsViewer, app: App, business_id: BusinessId = None, limit: AlertLimit = None
) -> JSONResponse:
    """A business key sees its business's alerts; a platform key sees all, or one business.

    ``limit`` keeps the newest ones; without it every alert is listed.
    """
    found = await alert_service(app).list_alerts(who, business_id, limit)
    return JSONResponse({"items": [alert_json(alert) for alert in found]})


def alert_json(alert: Alert) -> dict[str, Any]:
    """The JSON object of one alert."""
    return {
        "id": alert.id,
        "rule": alert.rule.value,
        "businessId": alert.business_id,
        "status": alert.status.value,
        "threshold": alert.threshold,
        "value": alert.value,
        "message": alert.message,
        "startedAt": schemas.iso(alert.started_at),
        "updatedAt": schemas.iso(alert.updated_at),
        "lastNotifiedAt": schemas.iso(alert.last_notified_at),
        "resolvedAt": schemas.iso(alert.resolved_at),
        "notifications": alert.notifications,
    }
