"""The audit page: admins only, newest first, every change by cookie recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commq.domain.audit import Principal
from commq.domain.permissions import Role

from .conftest import Dashboard, base_settings, running, with_providers

Q = "/communication-queue"


async def test_admins_read_who_did_what_and_others_may_not(dash: Dashboard) -> None:
    job = await dash.failed_job()
    support, csrf = await dash.signed_in("acme_support")
    await support.post(f"{Q}/{job['id']}/retry", headers={"X-CSRF-Token": csrf})
    admin, _ = await dash.signed_in("acme_admin")
    page = await admin.get("/dashboard/audit")
    assert page.status_code == 200
    assert "<code>job.retry</code>" in page.text and "acme_support" in page.text
    assert f'href="/dashboard/jobs/{job["id"]}"' in page.text
    for who in ("acme_manager", "acme_support"):
        client, _ = await dash.signed_in(who)
        refused = await client.get("/dashboard/audit")
        assert refused.status_code == 403
        assert 'href="/dashboard/audit"' not in (await client.get("/dashboard")).text


async def test_bulk_actions_show_their_filter_and_count(dash: Dashboard) -> None:
    await dash.failed_job()
    await dash.failed_job()
    manager, csrf = await dash.signed_in("acme_manager")
    body = {"channel": "webhook"}
    dry = await manager.post(
        f"{Q}/failed/retry", json={**body, "dryRun": True}, headers={"X-CSRF-Token": csrf}
    )
    assert dry.json()["count"] == 2
    done = await manager.post(f"{Q}/failed/retry", json=body, headers={"X-CSRF-Token": csrf})
    assert done.json()["count"] == 2
    admin, _ = await dash.signed_in("acme_admin")
    page = (await admin.get("/dashboard/audit?action=jobs.bulk_retry")).text
    assert "<code>jobs.bulk_retry</code>" in page and "channel=webhook" in page
    assert '<td data-label="Count">2</td>' in page
    assert "<code>job.retry</code>" not in page


async def test_key_revocations_can_be_picked_out(dash: Dashboard) -> None:
    container = dash.api.container
    stored, _ = await container.keys.create("old-backend", Role.PRODUCER, "acme")
    await container.keys.revoke(stored.id, Principal("cli", "commq cli", Role.ADMIN, None))
    admin, _ = await dash.signed_in("admin")
    page = (await admin.get("/dashboard/audit?action=key.revoke")).text
    assert '<option value="key.revoke" selected>' in page
    assert "<code>key.revoke</code>" in page and "old-backend" in page
    assert "<code>key.create</code>" not in page


async def test_a_bulk_change_by_cookie_needs_the_csrf_token(dash: Dashboard) -> None:
    await dash.failed_job()
    client, _ = await dash.signed_in("acme_admin")
    refused = await client.post(f"{Q}/failed/retry", json={})
    assert refused.status_code == 403


@pytest.fixture
async def dash_on_both(database_url: str, tmp_path: Path) -> AsyncIterator[Dashboard]:
    """The dashboard over SQLite and PostgreSQL (whose text cannot hold NUL)."""
    settings = with_providers(
        base_settings(database_url, tmp_path), "email=outbox", session_secret="test-secret"
    )
    async with running(settings) as api:
        yield Dashboard(api)


async def test_a_job_id_filter_holding_nul_is_ignored(dash_on_both: Dashboard) -> None:
    admin, _ = await dash_on_both.signed_in("acme_admin")
    page = await admin.get("/dashboard/audit?jobId=%00")
    assert page.status_code == 200
