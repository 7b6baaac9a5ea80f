"""GET /jobs, /pending, /failed, /by-communication and /{id}: filters, paging, tenants."""

from __future__ import annotations

import pytest

from .conftest import Api

Q = "/communication-queue"


async def test_jobs_pages_by_cursor_without_gaps_or_duplicates(api: Api) -> None:
    created = [(await api.enqueue("acme_producer"))["id"] for _ in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = await api.client.get(f"{Q}/jobs", params=params, headers=api.as_("acme_admin"))
        body = page.json()
        seen += [job["id"] for job in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


@pytest.mark.parametrize("limit", ["0", "501", "100000", "ten", "-1"])
async def test_a_limit_outside_1_to_500_is_422(api: Api, limit: str) -> None:
    for path in ("/jobs", "/pending", "/failed"):
        response = await api.client.get(
            f"{Q}{path}", params={"limit": limit}, headers=api.as_("acme_admin")
        )
        assert response.status_code == 422, (path, limit)
        assert response.json()["field"] == "query.limit"


async def test_an_unreadable_cursor_or_filter_is_422(api: Api) -> None:
    bad = [{"cursor": "garbage"}, {"status": "lost"}, {"createdFrom": "yesterday"}]
    for params in bad:
        response = await api.client.get(f"{Q}/jobs", params=params, headers=api.as_("acme_admin"))
        assert response.status_code == 422, params


async def test_jobs_filters_by_channel_recipient_and_communication(api: Api) -> None:
    await api.enqueue("acme_producer", recipient="a@example.com", communicationId="c1")
    await api.enqueue(
        "acme_producer", channel="sms", recipient="+14155550100", payload={"body": "x"}
    )
    headers = api.as_("acme_admin")
    sms = (await api.client.get(f"{Q}/jobs", params={"channel": "sms"}, headers=headers)).json()
    assert [j["recipient"] for j in sms["items"]] == ["+14155550100"]
    for typed in ("a@example.com", "A@Example.COM"):  # an address in any case
        by_recipient = await api.client.get(
            f"{Q}/jobs", params={"recipient": typed}, headers=headers
        )
        assert [j["recipient"] for j in by_recipient.json()["items"]] == ["a@example.com"]
    by_comm = await api.client.get(f"{Q}/jobs", params={"communicationId": "c1"}, headers=headers)
    assert len(by_comm.json()["items"]) == 1


async def test_pending_lists_oldest_run_at_first_with_a_link_to_the_next_page(api: Api) -> None:
    late = await api.enqueue("acme_producer", runAt="2040-01-01T00:00:00Z")
    early = await api.enqueue("acme_producer", runAt="2039-01-01T00:00:00Z")
    now = await api.enqueue("acme_producer")
    response = await api.client.get(
        f"{Q}/pending", params={"limit": 2}, headers=api.as_("acme_support")
    )
    assert [j["id"] for j in response.json()] == [now["id"], early["id"]]
    link = response.headers["link"]
    assert link.endswith('>; rel="next"')
    next_url = link[1 : link.index(">")]
    rest = await api.client.get(next_url, headers=api.as_("acme_support"))
    assert [j["id"] for j in rest.json()] == [late["id"]]
    assert "link" not in rest.headers


async def test_a_business_key_sees_only_its_business(api: Api) -> None:
    mine = await api.enqueue("acme_producer")
    theirs = await api.enqueue("globex_producer")
    listed = await api.client.get(f"{Q}/jobs", headers=api.as_("acme_admin"))
    assert [j["id"] for j in listed.json()["items"]] == [mine["id"]]
    other = await api.client.get(f"{Q}/{theirs['id']}", headers=api.as_("acme_admin"))
    assert other.status_code == 404
    assert other.json()["detail"] == f"Job {theirs['id']} not found"
    narrowed = await api.client.get(
        f"{Q}/jobs", params={"businessId": "globex"}, headers=api.as_("acme_admin")
    )
    assert narrowed.status_code == 403


async def test_a_platform_key_sees_all_and_may_narrow_by_business(api: Api) -> None:
    await api.enqueue("acme_producer")
    theirs = await api.enqueue("globex_producer")
    everything = await api.client.get(f"{Q}/jobs", headers=api.as_("admin"))
    assert len(everything.json()["items"]) == 2
    narrowed = await api.client.get(
        f"{Q}/jobs", params={"businessId": "globex"}, headers=api.as_("admin")
    )
    assert [j["id"] for j in narrowed.json()["items"]] == [theirs["id"]]
    stats = await api.client.get(
        f"{Q}/stats", params={"businessId": "globex"}, headers=api.as_("admin")
    )
    assert stats.json()["pending"] == 1


async def test_an_unknown_job_id_is_404(api: Api) -> None:
    for job_id in ("00000000-0000-7000-8000-000000000000", "not-a-uuid"):
        response = await api.client.get(f"{Q}/{job_id}", headers=api.as_("acme_admin"))
        assert response.status_code == 404


async def test_stats_count_each_status(api: Api) -> None:
    await api.enqueue("acme_producer")
    await api.enqueue("acme_producer", runAt="2040-01-01T00:00:00Z")
    stats = (await api.client.get(f"{Q}/stats", headers=api.as_("acme_support"))).json()
    assert stats["pending"] == 2 and stats["due"] == 1 and stats["scheduled"] == 1
    assert stats["failed"] == stats["completed"] == stats["processing"] == 0
    assert stats["avgProcessingTimeSeconds"] is None
    assert stats["oldestPendingAgeSeconds"] >= 0


async def test_stats_show_each_providers_circuit(api: Api) -> None:
    stats = (await api.client.get(f"{Q}/stats", headers=api.as_("acme_support"))).json()
    assert stats["providers"]["outbox"] == {"state": "closed", "openedAt": None, "failures": 0}


async def test_the_openapi_stats_schema_names_every_field_stats_returns(api: Api) -> None:
    stats = (await api.client.get(f"{Q}/stats", headers=api.as_("acme_support"))).json()
    schemas = (await api.client.get("/openapi.json")).json()["components"]["schemas"]
    assert set(schemas["StatsOut"]["properties"]) == set(stats)
    circuit = schemas["CircuitOut"]["properties"]
    assert set(circuit) == set(stats["providers"]["outbox"])
