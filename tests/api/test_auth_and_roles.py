"""Authentication, the role matrix and the rule that every route declares a permission."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute

from commq.domain.permissions import Permission
from commq.entrypoints.api.access import PermissionDependency
from commq.entrypoints.api.app import create_app
from commq.entrypoints.settings import Settings

from .conftest import Api

PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/docs/assets",  # Swagger UI's and ReDoc's scripts, served locally
    "/redoc",
    # Delivery-status callbacks: no API key, the provider's signature is checked instead
    # (tests/api/test_delivery_webhooks.py).
    "/webhooks/sendgrid",
    "/webhooks/twilio",
}


def _public(path: str) -> bool:
    # Dashboard pages check the session cookie and the role themselves (tests/dashboard).
    return path in PUBLIC or path == "/dashboard" or path.startswith("/dashboard/")


def _all_routes(routes: list[Any]) -> list[Any]:
    flat = []
    for route in routes:
        included = getattr(route, "original_router", None)
        flat += _all_routes(included.routes) if included is not None else [route]
    return flat


def test_every_route_declares_a_permission_or_is_listed_as_public() -> None:
    app = create_app(Settings(), run_worker=False)
    missing = []
    routes = _all_routes(app.routes)
    assert len(routes) > 15
    for route in routes:
        if not isinstance(route, APIRoute | APIWebSocketRoute):
            assert _public(route.path), f"{route.path} is neither an API route nor public"
            continue
        permissions = [
            dep.call.permission
            for dep in route.dependant.dependencies
            if isinstance(dep.call, PermissionDependency)
        ]
        if route.path.startswith("/communication-queue"):
            if len(permissions) != 1:
                missing.append(f"{sorted(getattr(route, 'methods', ['WS']))} {route.path}")
        else:
            assert _public(route.path), f"{route.path} is outside the prefix and not public"
    assert not missing, f"routes without exactly one permission: {missing}"


async def test_a_request_without_a_key_is_401_with_problem_json(api: Api) -> None:
    response = await api.client.get("/communication-queue/stats")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


@pytest.mark.parametrize(
    "header", ["Bearer nope", "Bearer cq_000000000000_wrong", "Basic abc", "Bearer "]
)
async def test_an_unknown_or_malformed_key_is_401(api: Api, header: str) -> None:
    response = await api.client.get("/communication-queue/stats", headers={"Authorization": header})
    assert response.status_code == 401


async def test_authentication_comes_before_body_validation(api: Api) -> None:
    response = await api.client.post(
        "/communication-queue/jobs", content=b"{not json", headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 401


async def test_health_probes_need_no_key(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}


ROUTE_CALLS = {
    Permission.VIEW_STATS: ("GET", "/communication-queue/stats"),
    Permission.VIEW_JOBS: ("GET", "/communication-queue/jobs"),
    Permission.PROCESS_MANUALLY: ("POST", "/communication-queue/process-now"),
}

MATRIX = {
    "acme_admin": {Permission.VIEW_STATS, Permission.VIEW_JOBS, Permission.PROCESS_MANUALLY},
    "acme_manager": {Permission.VIEW_STATS, Permission.VIEW_JOBS},
    "acme_support": {Permission.VIEW_STATS, Permission.VIEW_JOBS},
    "acme_producer": set(),
}


@pytest.mark.parametrize("who", sorted(MATRIX))
async def test_each_role_reaches_exactly_its_read_and_process_routes(api: Api, who: str) -> None:
    for permission, (method, path) in ROUTE_CALLS.items():
        response = await api.client.request(method, path, headers=api.as_(who))
        expected = 200 if permission in MATRIX[who] else 403
        assert response.status_code == expected, (who, path, response.text)


async def test_support_and_producers_cannot_delete_or_cancel(api: Api) -> None:
    job = await api.enqueue("acme_producer")
    base = f"/communication-queue/{job['id']}"
    for who in ("acme_support", "acme_producer"):
        assert (await api.client.delete(base, headers=api.as_(who))).status_code == 403
    assert (
        await api.client.post(f"{base}/cancel", headers=api.as_("acme_support"))
    ).status_code == 403
    assert (
        await api.client.post(f"{base}/retry", headers=api.as_("acme_producer"))
    ).status_code == 403
    assert (await api.client.delete(base, headers=api.as_("acme_manager"))).status_code == 403


async def test_producers_cannot_read_jobs(api: Api) -> None:
    job = await api.enqueue("acme_producer")
    response = await api.client.get(
        f"/communication-queue/{job['id']}", headers=api.as_("acme_producer")
    )
    assert response.status_code == 403


async def test_openapi_and_docs_are_served(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    assert "/communication-queue/jobs" in spec["paths"]
    docs = await api.client.get("/docs")
    assert docs.status_code == 200
    # Everything the page loads comes from this server: /docs works on a closed network.
    assert "cdn." not in docs.text and "https://" not in docs.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f'"/docs/assets/{asset}"' in docs.text or f"'/docs/assets/{asset}'" in docs.text
        served = await api.client.get(f"/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000
    redoc = await api.client.get("/redoc")
    assert redoc.status_code == 200 and "/docs/assets/redoc.standalone.js" in redoc.text
    assert "https://" not in redoc.text
