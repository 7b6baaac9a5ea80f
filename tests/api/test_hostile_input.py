"""Whatever a client sends, the answer is a clear 4xx, never a 500 or a traceback."""

from __future__ import annotations

import pytest

from .conftest import Api

Q = "/communication-queue"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"null",
        b'"a string"',
        b"[" * 50_000 + b"]" * 50_000,
        b'{"channel": "email", "recipient": "a@example.com", "payload": {"subject": NaN}}',
        b'{"channel": "email", "recipient": "a\\u0000@example.com", "payload": {}}',
        b"\xff\xfe not utf-8",
        b'{"channel": "sms", "recipient": "+14155550100", "payload": {"body": "x", "n": 1e999}}',
    ],
)
async def test_hostile_enqueue_bodies_get_a_4xx_problem(api: Api, body: bytes) -> None:
    response = await api.client.post(
        f"{Q}/jobs",
        content=body,
        headers={**api.as_("acme_producer"), "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        f"{Q}/jobs?communicationId=%00",
        f"{Q}/jobs?createdFrom=2026-13-45",
        f"{Q}/jobs?cursor=" + "A" * 600,
        f"{Q}/%00",
        f"{Q}/" + "x" * 5000,
        f"{Q}/by-communication/%00",
    ],
)
async def test_hostile_queries_and_paths_get_a_4xx(api: Api, path: str) -> None:
    response = await api.client.get(path, headers=api.as_("acme_admin"))
    assert 400 <= response.status_code < 500, response.text


async def test_a_wrong_method_is_405_problem_json(api: Api) -> None:
    response = await api.client.put(f"{Q}/jobs", headers=api.as_("acme_admin"))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


#: Valid ISO-8601 instants whose UTC equivalent falls outside the years 1 to 9999.
_BEYOND_UTC = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]


@pytest.mark.parametrize("moment", _BEYOND_UTC)
@pytest.mark.parametrize(
    "path",
    [
        "/jobs?createdFrom=",
        "/jobs?createdTo=",
        "/audit?from=",
        "/audit?to=",
        "/stats/history?from=",
        "/failed/export.csv?createdFrom=",
    ],
)
async def test_an_instant_beyond_utc_in_a_query_is_422_naming_it(
    api: Api, path: str, moment: str
) -> None:
    url = f"{Q}{path}{moment.replace('+', '%2B')}"
    response = await api.client.get(url, headers=api.as_("acme_admin"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"].removeprefix("query.") == path.split("?")[1].rstrip("=")


@pytest.mark.parametrize("moment", _BEYOND_UTC)
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/jobs", {"runAt": None}, "runAt"),
        ("/failed/retry", {"createdFrom": None, "dryRun": True}, "createdFrom"),
        ("/pending/cancel", {"createdTo": None, "dryRun": True}, "createdTo"),
    ],
)
async def test_an_instant_beyond_utc_in_a_body_is_422_naming_it(
    api: Api, path: str, body: dict[str, object], field: str, moment: str
) -> None:
    if path == "/jobs":
        body = {"channel": "sms", "recipient": "+14155550100", "payload": {"body": "x"}}
    response = await api.client.post(
        f"{Q}{path}", json={**body, field: moment}, headers=api.as_("acme_admin")
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
