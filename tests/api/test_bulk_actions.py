"""POST /failed/retry and /pending/cancel: filters, dry runs, tenants, roles, the audit trail."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from commq.entrypoints.settings import Settings

from .conftest import Api, base_settings, running
from .operations_support import Q, failed_job, status_of


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Bulk actions run on both SQLite and PostgreSQL."""
    return base_settings(database_url, tmp_path)


async def _audit(api: Api, **params: str) -> list[dict[str, object]]:
    response = await api.client.get(f"{Q}/audit", params=params, headers=api.as_("admin"))
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_a_dry_run_counts_and_the_real_run_retries_and_is_audited(api: Api) -> None:
    emails = [await failed_job(api) for _ in range(3)]
    sms = await failed_job(
        api, channel="sms", recipient="+14155550100", payload={"body": "code 1234"}
    )
    body = {"channel": "email", "dryRun": True}
    dry = await api.client.post(f"{Q}/failed/retry", json=body, headers=api.as_("acme_support"))
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"success": True, "message": "3 failed jobs would be retried", "count": 3}
    assert {await status_of(api, job["id"]) for job in emails} == {"failed"}
    assert await _audit(api, action="jobs.bulk_retry") == []
    real = await api.client.post(
        f"{Q}/failed/retry", json={"channel": "email"}, headers=api.as_("acme_support")
    )
    assert real.json() == {"success": True, "message": "3 failed jobs retried", "count": 3}
    assert {await status_of(api, job["id"]) for job in emails} == {"pending"}
    assert await status_of(api, sms["id"]) == "failed"
    [event] = await _audit(api, action="jobs.bulk_retry")
    assert (event["filter"], event["count"], event["businessId"]) == (
        {"channel": "email"},
        3,
        "acme",
    )
    assert (event["actorName"], event["role"], event["jobId"]) == ("acme_support", "support", None)


async def test_ids_narrow_a_bulk_retry(api: Api) -> None:
    first, second = await failed_job(api), await failed_job(api)
    response = await api.client.post(
        f"{Q}/failed/retry", json={"ids": [first["id"]]}, headers=api.as_("acme_admin")
    )
    assert response.json()["count"] == 1
    assert (await status_of(api, first["id"]), await status_of(api, second["id"])) == (
        "pending",
        "failed",
    )


async def test_a_business_key_never_retries_another_business(api: Api) -> None:
    ours = await failed_job(api)
    theirs = await failed_job(api, "globex_producer")
    everything = await api.client.post(f"{Q}/failed/retry", json={}, headers=api.as_("acme_admin"))
    assert everything.json()["count"] == 1
    by_id = await api.client.post(
        f"{Q}/failed/retry", json={"ids": [theirs["id"]]}, headers=api.as_("acme_admin")
    )
    assert by_id.json()["count"] == 0
    naming = await api.client.post(
        f"{Q}/failed/retry", json={"businessId": "globex"}, headers=api.as_("acme_admin")
    )
    assert naming.status_code == 403
    assert await status_of(api, theirs["id"]) == "failed"
    assert await status_of(api, ours["id"]) == "pending"


async def test_a_platform_key_covers_every_business_or_narrows_to_one(api: Api) -> None:
    acme, globex = await failed_job(api), await failed_job(api, "globex_producer")
    narrowed = await api.client.post(
        f"{Q}/failed/retry", json={"businessId": "globex"}, headers=api.as_("admin")
    )
    assert narrowed.json()["count"] == 1
    assert await status_of(api, acme["id"]) == "failed"
    await failed_job(api, "globex_producer")
    everyone = await api.client.post(f"{Q}/failed/retry", json={}, headers=api.as_("admin"))
    assert everyone.json()["count"] == 2
    assert {await status_of(api, j["id"]) for j in (acme, globex)} == {"pending"}


async def test_bulk_cancel_takes_due_and_scheduled_jobs_of_a_communication(api: Api) -> None:
    due = await api.enqueue("acme_producer", communicationId="promo")
    later = await api.enqueue(
        "acme_producer", communicationId="promo", runAt="2040-01-01T00:00:00Z"
    )
    kept = await api.enqueue("acme_producer", communicationId="receipt")
    response = await api.client.post(
        f"{Q}/pending/cancel", json={"communicationId": "promo"}, headers=api.as_("acme_manager")
    )
    assert response.json() == {"success": True, "message": "2 pending jobs cancelled", "count": 2}
    assert [await status_of(api, j["id"]) for j in (due, later, kept)] == [
        "cancelled",
        "cancelled",
        "pending",
    ]
    [event] = await _audit(api, action="jobs.bulk_cancel")
    assert (event["filter"], event["count"]) == ({"communicationId": "promo"}, 2)


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("acme_support", "/pending/cancel", 403),
        ("acme_producer", "/failed/retry", 403),
        ("acme_producer", "/pending/cancel", 403),
        ("acme_manager", "/failed/retry", 200),
    ],
)
async def test_bulk_actions_need_retry_or_cancel_permission(
    api: Api, who: str, path: str, status: int
) -> None:
    response = await api.client.post(f"{Q}{path}", json={}, headers=api.as_(who))
    assert response.status_code == status


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "failed"}, "status"),
        ({"chanel": "email"}, "chanel"),
        ({"channel": "fax"}, "channel"),
        ({"ids": []}, "ids"),
        ({"ids": ["x"] * 10_001}, "ids"),
        ({"dryRun": "maybe"}, "dryRun"),
        # JSON booleans only: pydantic's lax mode would read these as true or false.
        ({"dryRun": "yes"}, "dryRun"),
        ({"dryRun": "true"}, "dryRun"),
        ({"dryRun": "1"}, "dryRun"),
        ({"dryRun": 1}, "dryRun"),
        ({"dryRun": 0}, "dryRun"),
        ({"dryRun": "false"}, "dryRun"),
        ({"dryRun": None}, "dryRun"),
        ({"createdFrom": "yesterday"}, "createdFrom"),
    ],
)
async def test_unknown_or_bad_fields_are_422_naming_the_field(
    api: Api, body: dict[str, object], field: str
) -> None:
    response = await api.client.post(f"{Q}/failed/retry", json=body, headers=api.as_("acme_admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize("dry_run", ["false", 0, "no", "off"])
async def test_a_dry_run_that_is_not_a_json_boolean_changes_nothing(
    api: Api, dry_run: object
) -> None:
    job = await failed_job(api)
    response = await api.client.post(
        f"{Q}/failed/retry", json={"dryRun": dry_run}, headers=api.as_("acme_admin")
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "dryRun"
    assert await status_of(api, job["id"]) == "failed"
    assert await _audit(api, action="jobs.bulk_retry") == []


async def test_failed_is_never_taken_for_a_job_id(api: Api) -> None:
    for path in ("/failed/retry", "/pending/cancel"):
        response = await api.client.post(f"{Q}{path}", json={}, headers=api.as_("acme_admin"))
        assert response.status_code == 200, (path, response.text)
        assert response.json()["count"] == 0


async def test_a_bulk_retry_wakes_an_idle_worker(settings: Settings) -> None:
    async with running(replace(settings, poll_interval=30.0)) as api:
        job = await failed_job(api)
        worker = api.container.dispatcher()
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.3)  # idle now, for up to 30 s
        response = await api.client.post(f"{Q}/failed/retry", json={}, headers=api.as_("admin"))
        assert response.json()["count"] == 1
        try:
            for _ in range(200):  # up to 10 s, far below the 30 s poll
                if await status_of(api, job["id"]) == "completed":
                    break
                await asyncio.sleep(0.05)
            assert await status_of(api, job["id"]) == "completed"
        finally:
            worker.stop()
            await task
