"""POST /jobs and /jobs/batch: validation, idempotency, tenants, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Api

JOBS = "/communication-queue/jobs"
EMAIL = {
    "channel": "email",
    "recipient": "ana@example.com",
    "payload": {"subject": "Hi", "text": "Hello"},
}


async def test_enqueue_returns_201_and_the_stored_job(api: Api) -> None:
    payload = {"subject": "Hi", "html": "<b>x</b>", "text": "x", "headers": {"X-A": "1"}}
    response = await api.client.post(
        JOBS,
        json={**EMAIL, "payload": payload, "communicationId": "c-1"},
        headers=api.as_("acme_producer"),
    )
    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "pending"
    assert job["businessId"] == "acme"
    assert job["payload"] == payload
    assert job["attempts"] == 0 and job["maxAttempts"] == 3
    assert job["runAt"].endswith("Z") and job["createdAt"].endswith("Z")
    assert job["lastError"] is None and job["errorType"] is None


async def test_a_repeated_idempotency_key_returns_200_and_the_same_job(api: Api) -> None:
    body = {**EMAIL, "idempotencyKey": "order-7"}
    first = await api.client.post(JOBS, json=body, headers=api.as_("acme_producer"))
    again = await api.client.post(JOBS, json=body, headers=api.as_("acme_producer"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


async def test_idempotency_keys_are_per_business(api: Api) -> None:
    body = {**EMAIL, "idempotencyKey": "same"}
    acme = await api.client.post(JOBS, json=body, headers=api.as_("acme_producer"))
    globex = await api.client.post(JOBS, json=body, headers=api.as_("globex_producer"))
    assert (acme.status_code, globex.status_code) == (201, 201)
    assert acme.json()["id"] != globex.json()["id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recipient": "not-an-address"}, "recipient"),
        ({"channel": "sms", "recipient": "0612345678", "payload": {"body": "x"}}, "recipient"),
        (
            {"channel": "webhook", "recipient": "ftp://x.example", "payload": {"body": 1}},
            "recipient",
        ),
        (
            {"channel": "webhook", "recipient": "http://[::1/hook", "payload": {"body": 1}},
            "recipient",
        ),
        (
            {"channel": "webhook", "recipient": "https://x.example:99999/", "payload": {"body": 1}},
            "recipient",
        ),
        ({"channel": "pigeon"}, "channel"),
        ({"payload": {"text": "no subject"}}, "payload.subject"),
        ({"payload": {"subject": "no body"}}, "payload.text"),
        ({"channel": "sms", "recipient": "+14155550100", "payload": {}}, "payload.body"),
        ({"runAt": "tomorrow"}, "runAt"),
        ({"maxAttempts": 0}, "maxAttempts"),
        ({"priority": "high"}, "priority"),
        # JSON integers only: pydantic's lax mode would read these as 5, 2 and 1.
        ({"priority": "5"}, "priority"),
        ({"priority": 2.0}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"maxAttempts": "3"}, "maxAttempts"),
        ({"maxAttempts": 3.0}, "maxAttempts"),
        ({"maxAttempts": False}, "maxAttempts"),
        ({"surprise": 1}, "surprise"),
        ({"payload": {"subject": "x", "text": "y" * (300 * 1024)}}, "payload"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    response = await api.client.post(
        JOBS, json={**EMAIL, **change}, headers=api.as_("acme_producer")
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["field"] == field
    assert field in problem["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"{oops",
        b'{"channel": "webhook", "recipient": "https://x.example", "payload": {"body": '
        + b"9" * 5000  # more digits than Python's int conversion allows
        + b"}}",
        b"[" * 5000 + b"]" * 5000,  # nested deeper than the parser's recursion limit
    ],
    ids=["malformed", "huge-integer", "deep-nesting"],
)
async def test_a_body_that_is_not_json_commq_reads_is_422_naming_the_body(
    api: Api, body: bytes
) -> None:
    response = await api.client.post(
        JOBS, content=body, headers={**api.as_("acme_producer"), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "body"


async def test_a_body_over_one_mebibyte_is_413(api: Api) -> None:
    big = {**EMAIL, "payload": {"subject": "x", "text": "y" * (1024 * 1024 + 10)}}
    response = await api.client.post(JOBS, json=big, headers=api.as_("acme_producer"))
    assert response.status_code == 413


async def test_a_platform_key_must_name_the_business(api: Api) -> None:
    response = await api.client.post(JOBS, json=EMAIL, headers=api.as_("platform_producer"))
    assert response.status_code == 422
    assert response.json()["field"] == "businessId"
    named = await api.client.post(
        JOBS, json={**EMAIL, "businessId": "initech"}, headers=api.as_("platform_producer")
    )
    assert named.status_code == 201 and named.json()["businessId"] == "initech"


async def test_a_business_key_cannot_enqueue_for_another_business(api: Api) -> None:
    response = await api.client.post(
        JOBS, json={**EMAIL, "businessId": "globex"}, headers=api.as_("acme_producer")
    )
    assert response.status_code == 403


async def test_a_scheduled_job_keeps_its_run_at(api: Api) -> None:
    job = await api.enqueue("acme_producer", runAt="2031-01-02T03:04:05+02:00")
    assert job["runAt"] == "2031-01-02T01:04:05Z"


async def test_a_batch_is_stored_in_order(api: Api) -> None:
    jobs = [{**EMAIL, "recipient": f"user{i}@example.com"} for i in range(5)]
    response = await api.client.post(
        f"{JOBS}/batch", json={"jobs": jobs}, headers=api.as_("acme_producer")
    )
    assert response.status_code == 201
    assert [j["recipient"] for j in response.json()["jobs"]] == [j["recipient"] for j in jobs]


async def test_a_batch_answers_a_payload_with_an_int_beyond_64_bits_as_sent(api: Api) -> None:
    # JSON has no limit; orjson's is 64 bits, and the stdlib writes such an answer instead.
    body = '{"jobs": [{"businessId": "acme", "channel": "email", "recipient": "a@example.com",'
    body += ' "payload": {"subject": "s", "text": "x", "n": 123456789012345678901234}}]}'
    response = await api.client.post(
        f"{JOBS}/batch",
        content=body,
        headers={**api.as_("acme_producer"), "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    payload = json.loads(response.content)["jobs"][0]["payload"]
    assert payload == {"subject": "s", "text": "x", "n": 123456789012345678901234}


async def test_a_batch_with_one_bad_job_stores_nothing(api: Api) -> None:
    jobs = [EMAIL, {**EMAIL, "recipient": "broken"}]
    response = await api.client.post(
        f"{JOBS}/batch", json={"jobs": jobs}, headers=api.as_("acme_producer")
    )
    assert response.status_code == 422
    assert response.json()["field"] == "jobs[1].recipient"
    stats = await api.client.get("/communication-queue/stats", headers=api.as_("acme_admin"))
    assert stats.json()["pending"] == 0


async def test_a_key_repeated_inside_a_batch_is_422(api: Api) -> None:
    jobs = [{**EMAIL, "idempotencyKey": "k"}, {**EMAIL, "idempotencyKey": "k"}]
    response = await api.client.post(
        f"{JOBS}/batch", json={"jobs": jobs}, headers=api.as_("acme_producer")
    )
    assert response.status_code == 422
    assert response.json()["field"] == "jobs[1].idempotencyKey"


async def test_a_batch_returns_existing_jobs_for_seen_keys(api: Api) -> None:
    first = await api.enqueue("acme_producer", idempotencyKey="seen")
    jobs = [{**EMAIL, "idempotencyKey": "seen"}, {**EMAIL, "idempotencyKey": "new"}]
    response = await api.client.post(
        f"{JOBS}/batch", json={"jobs": jobs}, headers=api.as_("acme_producer")
    )
    assert response.status_code == 201
    stored = response.json()["jobs"]
    assert stored[0]["id"] == first["id"] and stored[1]["id"] != first["id"]


async def test_a_batch_over_1000_jobs_is_422(api: Api) -> None:
    response = await api.client.post(
        f"{JOBS}/batch", json={"jobs": [EMAIL] * 1001}, headers=api.as_("acme_producer")
    )
    assert response.status_code == 422
