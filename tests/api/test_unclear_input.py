"""Input FastAPI would quietly misread is a 422 naming it: a query parameter given twice,
one the route does not take, and a key given twice in one JSON object."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from commq.entrypoints.api.app import create_app
from commq.entrypoints.api.strict_route import StrictRoute
from commq.entrypoints.settings import Settings

from .conftest import Api
from .operations_support import Q, failed_job, status_of
from .test_auth_and_roles import _all_routes

SMS = '{"channel": "sms", "recipient": "+14155550100", "payload": {"body": "hi"}'
#: Bodies with one key given twice, and where the 422 says it is.
REPEATED_KEYS = [
    ("/jobs", SMS + ', "priority": 1, "priority": 5}', "priority"),
    ("/jobs", SMS[:-1] + ', "body": "bye"}}', "payload.body"),
    (
        "/jobs/batch",
        f'{{"jobs": [{SMS}}}, {SMS}, "runAt": null, "runAt": null}}]}}',
        "jobs.1.runAt",
    ),
]


def test_every_http_route_under_the_prefix_is_a_strict_route() -> None:
    app = create_app(Settings(), run_worker=False)
    routes = [r for r in _all_routes(app.routes) if isinstance(r, APIRoute)]
    prefixed = [r for r in routes if r.path.startswith(Q)]
    assert len(prefixed) > 15
    assert [r.path for r in prefixed if not isinstance(r, StrictRoute)] == []


@pytest.mark.parametrize(
    ("method", "query", "name"),
    [
        ("GET", "/jobs?status=failed&status=pending", "status"),
        ("GET", "/jobs?limit=5&limit=500", "limit"),
        ("GET", "/jobs?channel=sms&channel=email&limit=5", "channel"),
        ("GET", "/failed?limit=5&limit=6", "limit"),
        ("GET", "/pending?cursor=a&cursor=b", "cursor"),
        ("GET", "/failed/export.csv?provider=a&provider=b", "provider"),
        ("GET", "/jobs/export.csv?status=failed&status=completed", "status"),
        ("GET", "/audit?action=job.retry&action=job.cancel", "action"),
        ("GET", "/stats/history?from=2030-01-01&from=2030-02-01", "from"),
        ("GET", "/stats?businessId=acme&businessId=globex", "businessId"),
        ("GET", "/alerts?businessId=acme&businessId=globex", "businessId"),
        ("GET", "/suppressions?limit=1&limit=2", "limit"),
        ("POST", "/process-now?businessId=acme&businessId=globex", "businessId"),
    ],
)
async def test_a_repeated_query_parameter_is_422_naming_it(
    api: Api, method: str, query: str, name: str
) -> None:
    response = await api.client.request(method, f"{Q}{query}", headers=api.as_("admin"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == f"query.{name}"
    assert "given 2 times" in problem["detail"]


@pytest.mark.parametrize(
    ("method", "query", "name"),
    [
        ("GET", "/jobs?stauts=failed", "stauts"),
        ("GET", "/jobs?created_from=2030-01-01", "created_from"),
        ("GET", "/pending?channel=email", "channel"),
        ("GET", "/stats?limit=5", "limit"),
        ("GET", "/failed/export.csv?q=x&cursor=abc", "cursor"),
        ("POST", "/process-now?dryRun=true", "dryRun"),
    ],
)
async def test_a_query_parameter_the_route_does_not_take_is_422_naming_it(
    api: Api, method: str, query: str, name: str
) -> None:
    response = await api.client.request(method, f"{Q}{query}", headers=api.as_("admin"))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == f"query.{name}"
    assert "not a parameter of this endpoint" in problem["detail"]


async def test_an_unknown_query_parameter_on_enqueue_stores_nothing(api: Api) -> None:
    response = await api.client.post(
        f"{Q}/jobs?runAt=2030-01-01T00:00:00Z",
        json={"channel": "sms", "recipient": "+14155550100", "payload": {"body": "hi"}},
        headers=api.as_("acme_producer"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "query.runAt"
    assert await _jobs(api) == []


async def test_a_repeated_dry_run_key_retries_nothing(api: Api) -> None:
    job = await failed_job(api)
    response = await api.client.post(
        f"{Q}/failed/retry",
        content=b'{"dryRun": true, "dryRun": false}',
        headers={**api.as_("acme_admin"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "dryRun"
    assert await status_of(api, job["id"]) == "failed"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    REPEATED_KEYS,
    ids=["top-level", "in-payload", "in-a-batch"],
)
async def test_a_repeated_json_key_is_422_naming_where_and_stores_nothing(
    api: Api, path: str, body: str, field: str
) -> None:
    response = await api.client.post(
        f"{Q}{path}",
        content=body.encode(),
        headers={**api.as_("acme_producer"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == field
    assert "more than once" in problem["detail"]
    assert await _jobs(api) == []


async def test_the_same_key_in_different_objects_is_not_a_repeat(api: Api) -> None:
    response = await api.client.post(
        f"{Q}/jobs",
        content=b'{"channel": "sms", "recipient": "+14155550100",'
        b' "payload": {"body": "hi", "meta": {"body": 1, "id": 2}}}',
        headers={**api.as_("acme_producer"), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["payload"] == {"body": "hi", "meta": {"body": 1, "id": 2}}


async def _jobs(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get(f"{Q}/jobs", headers=api.as_("admin"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
