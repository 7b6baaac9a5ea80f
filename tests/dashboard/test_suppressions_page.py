"""The suppression list page: who sees it, what it shows, removing an entry."""

from __future__ import annotations

from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.domain.jobs import Channel
from commq.domain.suppression import Suppression, SuppressionReason

from .conftest import Dashboard

HOSTILE = "<i>x@example.com"


async def _suppress(dash: Dashboard, recipient: str, business: str = "acme") -> None:
    store = SqlSuppressionStore(dash.api.container.engine)
    entry = Suppression(business, Channel.EMAIL, recipient, SuppressionReason.HARD_BOUNCE)
    await store.add_suppression(entry)


async def test_admins_and_managers_see_the_list_and_support_does_not(dash: Dashboard) -> None:
    await _suppress(dash, "gone@example.com")
    for who in ("acme_admin", "acme_manager"):
        client, _ = await dash.signed_in(who)
        page = await client.get("/dashboard/suppressions")
        assert page.status_code == 200
        assert "gone@example.com" in page.text and "hard bounce" in page.text
        assert 'data-action="unsuppress"' in page.text
        assert 'href="/dashboard/suppressions"' in page.text  # in the navigation
    support, _ = await dash.signed_in("acme_support")
    refused = await support.get("/dashboard/suppressions")
    assert refused.status_code == 403 and "support role cannot see this page" in refused.text
    assert 'href="/dashboard/suppressions"' not in (await support.get("/dashboard")).text


async def test_a_business_sees_only_its_own_suppressions(dash: Dashboard) -> None:
    await _suppress(dash, "theirs@example.com", "globex")
    client, _ = await dash.signed_in("acme_manager")
    page = (await client.get("/dashboard/suppressions")).text
    assert "theirs@example.com" not in page and "Nobody is suppressed." in page


async def test_removing_an_entry_through_the_api_by_cookie(dash: Dashboard) -> None:
    await _suppress(dash, HOSTILE)
    client, csrf = await dash.signed_in("acme_manager")
    page = (await client.get("/dashboard/suppressions")).text
    assert "&lt;i&gt;x@example.com" in page and "<i>x" not in page
    gone = await client.delete(
        "/communication-queue/suppressions/%3Ci%3Ex%40example.com?businessId=acme",
        headers={"X-CSRF-Token": csrf},
    )
    assert gone.status_code == 200, gone.text
    assert "Nobody is suppressed." in (await client.get("/dashboard/suppressions")).text
