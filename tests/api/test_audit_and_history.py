"""GET /audit, GET /stats/history and the richer GET /stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from commq.entrypoints.settings import Settings

from .conftest import Api, base_settings
from .operations_support import Q, failed_job

AUDIT_FIELDS = {
    "id",
    "at",
    "action",
    "actorKeyId",
    "actorName",
    "role",
    "businessId",
    "jobId",
    "filter",
    "count",
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """On both SQLite and PostgreSQL."""
    return base_settings(database_url, tmp_path)


async def _get(api: Api, path: str, who: str = "admin", **params: Any) -> Any:
    response = await api.client.get(f"{Q}{path}", params=params, headers=api.as_(who))
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_audit_trail_shows_each_change_newest_first_with_the_design_fields(
    api: Api,
) -> None:
    job = await api.enqueue("acme_producer", runAt="2040-01-01T00:00:00Z")
    await api.client.post(f"{Q}/{job['id']}/cancel", headers=api.as_("acme_manager"))
    await api.client.post(f"{Q}/{job['id']}/retry", headers=api.as_("acme_support"))
    await api.client.post(f"{Q}/pending/cancel", json={}, headers=api.as_("globex_admin"))
    page = await _get(api, "/audit", "acme_admin")
    assert [e["action"] for e in page["items"]] == ["job.retry", "job.cancel"]
    retry = page["items"][0]
    assert set(retry) == AUDIT_FIELDS
    assert (retry["jobId"], retry["businessId"], retry["role"]) == (job["id"], "acme", "support")
    assert retry["at"].endswith("Z") and retry["filter"] is None and retry["count"] is None
    everyone = await _get(api, "/audit")
    assert [e["action"] for e in everyone["items"]][:3] == [
        "jobs.bulk_cancel",
        "job.retry",
        "job.cancel",
    ]
    globex = await _get(api, "/audit", businessId="globex")
    assert [e["action"] for e in globex["items"]] == ["jobs.bulk_cancel"]


async def test_the_audit_trail_filters_and_pages(api: Api) -> None:
    job = await api.enqueue("acme_producer")
    for _ in range(2):
        await api.client.post(f"{Q}/{job['id']}/cancel", headers=api.as_("acme_manager"))
        await api.client.post(f"{Q}/{job['id']}/retry", headers=api.as_("acme_admin"))
    retries = await _get(api, "/audit", action="job.retry", jobId=job["id"])
    assert [e["actorName"] for e in retries["items"]] == ["acme_admin", "acme_admin"]
    key_id = retries["items"][0]["actorKeyId"]
    by_key = await _get(api, "/audit", actorKeyId=key_id)
    assert len(by_key["items"]) == 2
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert (await _get(api, "/audit", **{"from": later}))["items"] == []
    seen, cursor = [], None
    while True:
        page = await _get(api, "/audit", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [e["id"] for e in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 4
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    ("who", "params", "status", "field"),
    [
        ("acme_manager", {}, 403, None),
        ("acme_admin", {"businessId": "globex"}, 403, None),
        ("acme_admin", {"cursor": "garbage"}, 422, "cursor"),
        ("acme_admin", {"limit": "0"}, 422, "query.limit"),
        ("acme_admin", {"limit": "501"}, 422, "query.limit"),
        ("acme_admin", {"from": "yesterday"}, 422, "query.from"),
    ],
)
async def test_the_audit_trail_is_for_admins_and_refuses_bad_paging(
    api: Api, who: str, params: dict[str, str], status: int, field: str | None
) -> None:
    response = await api.client.get(f"{Q}/audit", params=params, headers=api.as_(who))
    assert response.status_code == status
    if field is not None:
        assert response.json()["field"] == field


async def test_history_returns_dense_series_per_group(api: Api) -> None:
    await failed_job(api)
    await api.enqueue(
        "acme_producer", channel="sms", recipient="+14155550100", payload={"body": "x"}
    )
    await api.enqueue("globex_producer")
    start = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    end = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    body = await _get(
        api,
        "/stats/history",
        "acme_support",
        bucket="minute",
        groupBy="channel",
        to=end,
        **{"from": start},
    )
    assert (body["bucket"], body["groupBy"]) == ("minute", "channel")
    series = {s["group"]: s["points"] for s in body["series"]}
    assert set(series) == {"email", "sms"}
    assert len(series["email"]) in (4, 5)  # every minute of the range, empty ones too
    email = {k: sum(p[k] for p in series["email"]) for k in ("enqueued", "failed", "completed")}
    assert email == {"enqueued": 1, "failed": 1, "completed": 0}
    assert sum(p["failedAttempts"] for p in series["email"]) == 1
    assert sum(p["enqueued"] for p in series["sms"]) == 1
    point = series["email"][0]
    assert set(point) == {
        "at",
        "enqueued",
        "completed",
        "failed",
        "failedAttempts",
        "avgProcessingTimeSeconds",
    }
    assert point["at"].endswith(":00Z")
    everyone = await _get(api, "/stats/history", bucket="day", **{"from": start})
    [total] = everyone["series"]
    assert (total["group"], sum(p["enqueued"] for p in total["points"])) == (None, 3)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "query.from"),
        ({"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "from"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "from"),
        ({"from": "2025-01-01T00:00:00Z", "bucket": "week"}, "query.bucket"),
        ({"from": "2025-01-01T00:00:00Z", "groupBy": "recipient"}, "query.groupBy"),
        ({"from": "2000-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z", "bucket": "minute"}, "to"),
        ({"from": "noon"}, "query.from"),
    ],
)
async def test_history_refuses_bad_ranges_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = await api.client.get(
        f"{Q}/stats/history", params=params, headers=api.as_("acme_admin")
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field
    # Refused by the domain or by request validation, a 422 has the same shape.
    assert problem["errors"][0]["field"] == field and problem["errors"][0]["message"]


async def test_history_needs_view_stats_and_stays_in_the_business(api: Api) -> None:
    params = {"from": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    producer = await api.client.get(
        f"{Q}/stats/history", params=params, headers=api.as_("acme_producer")
    )
    assert producer.status_code == 403
    other = await api.client.get(
        f"{Q}/stats/history",
        params=params | {"businessId": "globex"},
        headers=api.as_("acme_admin"),
    )
    assert other.status_code == 403


async def test_stats_add_throughput_failure_rate_breakdowns_and_top_errors(api: Api) -> None:
    await failed_job(api, error="550 mailbox unknown")
    await failed_job(api, error="550 mailbox unknown")
    await api.enqueue("acme_producer")
    stats = await _get(api, "/stats", "acme_support")
    assert stats["failed"] == 2 and stats["pending"] == 1
    assert stats["throughput"] == {"lastMinute": 0, "lastHour": 0}
    assert stats["failureRateLastHour"] == 1.0
    assert stats["byChannel"]["email"]["failed"] == 2
    assert stats["byProvider"] == {
        "smtp": {"pending": 0, "processing": 0, "completed": 0, "failed": 2, "cancelled": 0}
    }
    assert stats["topErrorsLastHour"] == [{"error": "550 mailbox unknown", "count": 2}]
    assert {"avgProcessingTimeSeconds", "oldestPendingAgeSeconds", "due", "scheduled"} <= set(stats)
