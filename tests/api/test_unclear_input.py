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


# ---- values pydantic's lax reading would take for something else --------------------


@pytest.mark.parametrize("limit", [" 10", "10.0", "+10", "1_0", "1e1"])
@pytest.mark.parametrize(
    "path", ["/jobs", "/failed", "/audit", "/suppressions", "/alerts", "/failed/export.csv"]
)
async def test_a_limit_that_is_not_plain_digits_is_422(api: Api, path: str, limit: str) -> None:
    response = await api.client.get(f"{Q}{path}", params={"limit": limit}, headers=api.as_("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "query.limit"
    assert "whole number" in response.json()["detail"]


@pytest.mark.parametrize("moment", ["2030", "1700000000", "1.7e9", "20300101"])
@pytest.mark.parametrize("name", ["createdFrom", "createdTo"])
async def test_a_number_is_not_read_as_unix_time_in_a_query(
    api: Api, name: str, moment: str
) -> None:
    response = await api.client.get(f"{Q}/jobs", params={name: moment}, headers=api.as_("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == f"query.{name}"
    assert "ISO-8601" in response.json()["detail"]


@pytest.mark.parametrize("run_at", [1700000000, 1700000000000, 2.5, "1700000000", True])
async def test_a_number_is_not_read_as_unix_time_in_a_body(api: Api, run_at: object) -> None:
    body = {"channel": "sms", "recipient": "+14155550100", "payload": {"body": "hi"}}
    response = await api.client.post(
        f"{Q}/jobs", json={**body, "runAt": run_at}, headers=api.as_("acme_producer")
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "runAt"
    assert await _jobs(api) == []
    bulk = await api.client.post(
        f"{Q}/failed/retry", json={"createdFrom": run_at}, headers=api.as_("acme_admin")
    )
    assert bulk.status_code == 422, bulk.text
    assert bulk.json()["field"] == "createdFrom"


async def test_a_date_or_a_date_time_is_still_read(api: Api) -> None:
    await api.enqueue("acme_producer")
    for moment in ("2000-01-01", "2000-01-01T09:00:00Z", "2000-01-01 09:00"):
        response = await api.client.get(
            f"{Q}/jobs", params={"createdFrom": moment}, headers=api.as_("acme_admin")
        )
        assert response.status_code == 200, (moment, response.text)
        assert len(response.json()["items"]) == 1


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/jobs", "provider"),
        ("/jobs", "recipient"),
        ("/jobs", "communicationId"),
        ("/jobs", "q"),
        ("/failed", "provider"),
        ("/jobs/export.csv", "recipient"),
        ("/audit", "action"),
        ("/audit", "actorName"),
        ("/audit", "jobId"),
    ],
)
@pytest.mark.parametrize("value", ["", "  "])
async def test_an_empty_text_filter_is_422_not_a_filter_matching_nothing(
    api: Api, path: str, name: str, value: str
) -> None:
    response = await api.client.get(f"{Q}{path}", params={name: value}, headers=api.as_("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == f"query.{name}"


@pytest.mark.parametrize("body", [{"provider": ""}, {"q": " "}, {"recipient": ""}])
async def test_an_empty_text_filter_in_a_bulk_body_changes_nothing(
    api: Api, body: dict[str, str]
) -> None:
    job = await failed_job(api)
    response = await api.client.post(f"{Q}/failed/retry", json=body, headers=api.as_("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == next(iter(body))
    assert await status_of(api, job["id"]) == "failed"


@pytest.mark.parametrize("business", [" ", "acme ", " acme"])
async def test_a_business_id_with_surrounding_spaces_is_422(api: Api, business: str) -> None:
    body = {"channel": "sms", "recipient": "+14155550100", "payload": {"body": "hi"}}
    response = await api.client.post(
        f"{Q}/jobs", json={**body, "businessId": business}, headers=api.as_("admin")
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "businessId"
    assert await _jobs(api) == []
    listed = await api.client.get(
        f"{Q}/jobs", params={"businessId": business}, headers=api.as_("admin")
    )
    assert listed.status_code == 422, listed.text
    assert listed.json()["field"] == "query.businessId"
    bulk = await api.client.post(
        f"{Q}/pending/cancel", json={"businessId": business}, headers=api.as_("admin")
    )
    assert bulk.status_code == 422, bulk.text


@pytest.mark.parametrize(
    ("path", "start", "end"),
    [
        ("/jobs", "createdFrom", "createdTo"),
        ("/failed", "createdFrom", "createdTo"),
        ("/jobs/export.csv", "createdFrom", "createdTo"),
        ("/audit", "from", "to"),
    ],
)
@pytest.mark.parametrize("to", ["2020-01-01", "2030-01-01"])
async def test_a_range_that_ends_before_or_where_it_starts_is_422(
    api: Api, path: str, start: str, end: str, to: str
) -> None:
    response = await api.client.get(
        f"{Q}{path}", params={start: "2030-01-01", end: to}, headers=api.as_("admin")
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == f"query.{end}"


async def test_a_bulk_range_that_ends_before_it_starts_changes_nothing(api: Api) -> None:
    job = await failed_job(api)
    body = {"createdFrom": "2999-01-01", "createdTo": "2000-01-01"}
    response = await api.client.post(f"{Q}/failed/retry", json=body, headers=api.as_("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "createdTo"
    assert await status_of(api, job["id"]) == "failed"


@pytest.mark.parametrize("path", ["/failed", "/failed/export.csv"])
async def test_the_failed_routes_refuse_another_status(api: Api, path: str) -> None:
    job = await failed_job(api)
    refused = await api.client.get(
        f"{Q}{path}", params={"status": "pending"}, headers=api.as_("acme_admin")
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "query.status"
    agreed = await api.client.get(
        f"{Q}{path}", params={"status": "failed"}, headers=api.as_("acme_admin")
    )
    assert agreed.status_code == 200, agreed.text
    assert job["id"] in agreed.text


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/by-communication/", "path.communicationId"),
        ("GET", "/suppressions/", "path.recipient"),
        ("DELETE", "/suppressions/", "path.recipient"),
    ],
)
async def test_an_empty_id_in_a_path_is_422(api: Api, method: str, path: str, field: str) -> None:
    response = await api.client.request(method, f"{Q}{path}", headers=api.as_("acme_admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_sent_as_json_is_422_saying_so(
    api: Api, content_type: str | None
) -> None:
    headers = api.as_("acme_producer")
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await api.client.post(f"{Q}/jobs", content=SMS.encode() + b"}", headers=headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == "body"
    assert "Content-Type: application/json" in problem["detail"]
    assert await _jobs(api) == []


async def test_a_body_sent_to_a_route_that_reads_none_is_422(api: Api) -> None:
    job = await failed_job(api)
    headers = {**api.as_("admin"), "Content-Type": "application/json"}
    for path in ("/process-now", f"/{job['id']}/retry"):
        response = await api.client.post(
            f"{Q}{path}", content=b'{"businessId": "acme"}', headers=headers
        )
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == "body"
    assert await status_of(api, job["id"]) == "failed"
    for empty in (b"", b"{}", b"null"):
        response = await api.client.post(f"{Q}/process-now", content=empty, headers=headers)
        assert response.status_code == 200, (empty, response.text)


def test_the_openapi_schema_still_states_the_limits_bounds() -> None:
    schema = create_app(Settings(), run_worker=False).openapi()
    for path, maximum in (("/jobs", 500), ("/alerts", 500), ("/failed/export.csv", 1_000_000)):
        [limit] = [
            p for p in schema["paths"][Q + path]["get"]["parameters"] if p["name"] == "limit"
        ]
        shown = limit["schema"].get("anyOf", [limit["schema"]])[0]
        assert (shown["minimum"], shown["maximum"]) == (1, maximum), path
