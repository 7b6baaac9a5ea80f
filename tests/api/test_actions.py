"""Retry, cancel, delete and process-now: transitions, 409s, tenants and the audit trail."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text

from commq.entrypoints.settings import Settings

from .conftest import Api, base_settings

Q = "/communication-queue"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Job actions run on both SQLite and PostgreSQL."""
    return base_settings(database_url, tmp_path)


async def _audit_actions(api: Api) -> list[tuple[str, str | None, str]]:
    async with api.container.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT action, job_id, actor_name FROM audit_events ORDER BY at")
        )
        return [tuple(row) for row in rows]


async def test_cancel_a_scheduled_job_then_retry_it(api: Api) -> None:
    job = await api.enqueue("acme_producer", runAt="2040-01-01T00:00:00Z")
    cancelled = await api.client.post(f"{Q}/{job['id']}/cancel", headers=api.as_("acme_manager"))
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["success"] is True and body["job"]["status"] == "cancelled"
    assert body["job"]["cancelledAt"] is not None
    again = await api.client.post(f"{Q}/{job['id']}/cancel", headers=api.as_("acme_manager"))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    retried = await api.client.post(f"{Q}/{job['id']}/retry", headers=api.as_("acme_support"))
    assert retried.status_code == 200
    assert retried.json()["job"]["status"] == "pending"
    assert retried.json()["job"]["attempts"] == 0


async def test_retry_of_a_pending_job_is_409(api: Api) -> None:
    job = await api.enqueue("acme_producer")
    response = await api.client.post(f"{Q}/{job['id']}/retry", headers=api.as_("acme_admin"))
    assert response.status_code == 409
    assert "pending" in response.json()["detail"]


async def test_delete_removes_the_job(api: Api) -> None:
    job = await api.enqueue("acme_producer")
    response = await api.client.delete(f"{Q}/{job['id']}", headers=api.as_("acme_admin"))
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": f"Job {job['id']} deleted"}
    gone = await api.client.get(f"{Q}/{job['id']}", headers=api.as_("acme_admin"))
    assert gone.status_code == 404


async def test_actions_on_another_business_job_are_404(api: Api) -> None:
    job = await api.enqueue("globex_producer")
    for method, path in (("POST", "retry"), ("POST", "cancel")):
        response = await api.client.request(
            method, f"{Q}/{job['id']}/{path}", headers=api.as_("acme_admin")
        )
        assert response.status_code == 404
    deleted = await api.client.delete(f"{Q}/{job['id']}", headers=api.as_("acme_admin"))
    assert deleted.status_code == 404
    still = await api.client.get(f"{Q}/{job['id']}", headers=api.as_("globex_admin"))
    assert still.json()["status"] == "pending"


async def test_every_change_writes_an_audit_event(api: Api) -> None:
    job = await api.enqueue("acme_producer")
    await api.client.post(f"{Q}/{job['id']}/cancel", headers=api.as_("acme_manager"))
    await api.client.post(f"{Q}/{job['id']}/retry", headers=api.as_("acme_support"))
    await api.client.delete(f"{Q}/{job['id']}", headers=api.as_("acme_admin"))
    await api.client.post(f"{Q}/process-now", headers=api.as_("acme_admin"))
    events = await _audit_actions(api)
    assert events[-4:] == [
        ("job.cancel", job["id"], "acme_manager"),
        ("job.retry", job["id"], "acme_support"),
        ("job.delete", job["id"], "acme_admin"),
        ("queue.process_now", None, "acme_admin"),
    ]


async def test_a_refused_change_writes_no_audit_event(api: Api) -> None:
    job = await api.enqueue("acme_producer")
    before = await _audit_actions(api)
    await api.client.post(f"{Q}/{job['id']}/retry", headers=api.as_("acme_admin"))
    assert await _audit_actions(api) == before


async def test_process_now_sends_the_callers_due_jobs_only(api: Api) -> None:
    mine = [await api.enqueue("acme_producer") for _ in range(3)]
    scheduled = await api.enqueue("acme_producer", runAt="2040-01-01T00:00:00Z")
    theirs = await api.enqueue("globex_producer")
    response = await api.client.post(f"{Q}/process-now", headers=api.as_("acme_admin"))
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Processed 3 due jobs", "processed": 3}
    for job in mine:
        detail = (await api.client.get(f"{Q}/{job['id']}", headers=api.as_("acme_admin"))).json()
        assert detail["status"] == "completed" and detail["provider"] == "outbox"
        assert [h["outcome"] for h in detail["history"]] == ["succeeded"]
        assert (api.outbox / f"{job['id']}.eml").is_file()
    other = (await api.client.get(f"{Q}/{theirs['id']}", headers=api.as_("globex_admin"))).json()
    assert other["status"] == "pending"
    later = (await api.client.get(f"{Q}/{scheduled['id']}", headers=api.as_("acme_admin"))).json()
    assert later["status"] == "pending"


@pytest.mark.parametrize("communication_id", ["order/42", "a b?c#d%e", "/", "é/😀"])
async def test_by_communication_finds_an_id_of_any_characters_percent_encoded(
    api: Api, communication_id: str
) -> None:
    job = await api.enqueue("acme_producer", communicationId=communication_id)
    response = await api.client.get(
        f"{Q}/by-communication/{quote(communication_id, safe='')}", headers=api.as_("acme_support")
    )
    assert response.status_code == 200, response.text
    assert [j["id"] for j in response.json()] == [job["id"]]


async def test_by_communication_returns_jobs_with_history_oldest_first(api: Api) -> None:
    first = await api.enqueue("acme_producer", communicationId="welcome-42")
    second = await api.enqueue(
        "acme_producer",
        communicationId="welcome-42",
        channel="sms",
        recipient="+14155550100",
        payload={"body": "hi"},
    )
    await api.enqueue("globex_producer", communicationId="welcome-42")
    await api.client.post(f"{Q}/process-now", headers=api.as_("acme_admin"))
    response = await api.client.get(
        f"{Q}/by-communication/welcome-42", headers=api.as_("acme_support")
    )
    jobs = response.json()
    assert [j["id"] for j in jobs] == [first["id"], second["id"]]
    assert all(j["history"][0]["seq"] == 1 for j in jobs)
    assert jobs[0]["history"][0]["durationMs"] >= 0
