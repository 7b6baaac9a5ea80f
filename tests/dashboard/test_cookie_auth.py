"""The REST API with the dashboard's session cookie instead of a Bearer key."""

from __future__ import annotations

from sqlalchemy import text

from .conftest import Dashboard

Q = "/communication-queue"


async def test_the_api_accepts_the_session_cookie_for_reads(dash: Dashboard) -> None:
    await dash.api.enqueue("acme_producer")
    client, _ = await dash.signed_in("acme_support")
    stats = await client.get(f"{Q}/stats")
    assert stats.status_code == 200 and stats.json()["pending"] == 1
    assert (await client.get(f"{Q}/jobs")).json()["items"][0]["businessId"] == "acme"


async def test_a_change_by_cookie_needs_the_sessions_csrf_token(dash: Dashboard) -> None:
    job = await dash.failed_job()
    client, csrf = await dash.signed_in("acme_support")
    refused = await client.post(f"{Q}/{job['id']}/retry")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "X-CSRF-Token" in refused.json()["detail"]
    _, other_csrf = await dash.signed_in("acme_support")
    wrong = await client.post(f"{Q}/{job['id']}/retry", headers={"X-CSRF-Token": other_csrf})
    assert wrong.status_code == 403
    done = await client.post(f"{Q}/{job['id']}/retry", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200 and done.json()["job"]["status"] == "pending"


async def test_a_cross_site_change_is_refused_even_with_the_token(dash: Dashboard) -> None:
    job = await dash.failed_job()
    client, csrf = await dash.signed_in("acme_admin")
    for extra in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await client.post(
            f"{Q}/{job['id']}/retry", headers={"X-CSRF-Token": csrf, **extra}
        )
        assert response.status_code == 403, extra
        assert "Cross-site" in response.json()["detail"]
    same = {"X-CSRF-Token": csrf, "Origin": "http://commq.test", "Sec-Fetch-Site": "same-origin"}
    assert (await client.post(f"{Q}/{job['id']}/retry", headers=same)).status_code == 200


async def test_the_role_still_decides_what_a_cookie_may_do(dash: Dashboard) -> None:
    job = await dash.api.enqueue("acme_producer")
    client, csrf = await dash.signed_in("acme_support")
    headers = {"X-CSRF-Token": csrf}
    assert (await client.post(f"{Q}/{job['id']}/cancel", headers=headers)).status_code == 403
    assert (await client.delete(f"{Q}/{job['id']}", headers=headers)).status_code == 403
    assert (await client.post(f"{Q}/process-now", headers=headers)).status_code == 403


async def test_a_cookie_sees_only_its_own_business(dash: Dashboard) -> None:
    job = await dash.api.enqueue("globex_producer")
    client, csrf = await dash.signed_in("acme_admin")
    assert (await client.get(f"{Q}/{job['id']}")).status_code == 404
    headers = {"X-CSRF-Token": csrf}
    assert (await client.delete(f"{Q}/{job['id']}", headers=headers)).status_code == 404


async def test_an_authorization_header_wins_over_the_cookie(dash: Dashboard) -> None:
    client, _ = await dash.signed_in("acme_admin")
    bad = await client.get(f"{Q}/stats", headers={"Authorization": "Bearer cq_000000000000_x"})
    assert bad.status_code == 401
    basic = await client.get(f"{Q}/stats", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    producer = await client.get(f"{Q}/stats", headers=dash.api.as_("acme_producer"))
    assert producer.status_code == 403


async def test_bearer_changes_need_no_csrf_token(dash: Dashboard) -> None:
    job = await dash.failed_job()
    response = await dash.api.client.post(
        f"{Q}/{job['id']}/retry",
        headers={**dash.api.as_("acme_support"), "Origin": "https://elsewhere.example"},
    )
    assert response.status_code == 200


async def test_a_session_ends_when_its_key_is_removed(dash: Dashboard) -> None:
    client, _ = await dash.signed_in("acme_support")
    assert (await client.get(f"{Q}/stats")).status_code == 200
    async with dash.api.container.engine.begin() as conn:
        await conn.execute(text("DELETE FROM api_keys WHERE name = 'acme_support'"))
    assert (await client.get(f"{Q}/stats")).status_code == 401
    assert (await client.get("/dashboard")).status_code == 303


async def test_changes_by_cookie_are_audited_under_the_keys_name(dash: Dashboard) -> None:
    job = await dash.failed_job()
    client, csrf = await dash.signed_in("acme_support")
    await client.post(f"{Q}/{job['id']}/retry", headers={"X-CSRF-Token": csrf})
    async with dash.api.container.engine.connect() as conn:
        rows = await conn.execute(text("SELECT action, actor_name FROM audit_events"))
        assert ("job.retry", "acme_support") in [tuple(row) for row in rows]
