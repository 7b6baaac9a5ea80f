"""Filters the REST API refuses with 422: the jobs page explains them, or never sends them.

The page's Export CSV link and bulk buttons hand its filters to the API. Whatever the
query string, each one the page offers must be accepted; a filter the API would refuse
(dates the wrong way round) is explained beside the form and offers neither.
"""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest

from .conftest import Dashboard

Q = "/communication-queue"
REVERSED = "createdFrom=2026-05-03&createdTo=2026-05-01"
NOTICE = "&#39;Created to&#39; must be after &#39;Created from&#39;"


def _export_url(page: str) -> str | None:
    match = re.search(r'<a class="button" href="([^"]+)" download', page)
    return html.unescape(match.group(1)) if match else None


def _bulk_filters(page: str) -> list[tuple[str, dict[str, object]]]:
    found = re.findall(r"data-bulk=\"([a-z]+)\" data-filter='([^']*)'", page)
    return [(kind, json.loads(html.unescape(text))) for kind, text in found]


async def _dry_run(
    client: httpx.AsyncClient, csrf: str, kind: str, body: dict[str, object]
) -> httpx.Response:
    path = f"{Q}/failed/retry" if kind == "retry" else f"{Q}/pending/cancel"
    return await client.post(path, json={**body, "dryRun": True}, headers={"X-CSRF-Token": csrf})


@pytest.mark.parametrize("status", ["failed", "pending", ""])
async def test_reversed_dates_are_explained_and_offer_no_export_or_bulk_action(
    dash: Dashboard, status: str
) -> None:
    await dash.failed_job()
    await dash.api.enqueue("acme_producer", runAt="2040-01-01T00:00:00Z")
    client, _ = await dash.signed_in("acme_admin")
    page = (await client.get(f"/dashboard/jobs?status={status}&{REVERSED}")).text
    assert NOTICE in page
    assert 'id="error-createdTo" class="error-text filter-error" role="alert"' in page
    assert 'name="createdTo" value="2026-05-01" aria-invalid="true"' in page
    assert 'aria-describedby="error-createdTo"' in page
    assert 'name="createdFrom" value="2026-05-03"' in page  # kept, to be corrected
    assert '<details class="filters-box" open>' in page
    assert _export_url(page) is None and _bulk_filters(page) == []
    assert "data-job-row" not in page and "No jobs are listed until the filter" in page
    assert "jobs match" not in page  # not the silent "nothing matches" of before


async def test_the_same_day_in_both_dates_lists_that_day_and_exports_it(dash: Dashboard) -> None:
    job = await dash.failed_job()
    day = str(job["createdAt"])[:10]
    client, csrf = await dash.signed_in("acme_admin")
    page = await client.get(f"/dashboard/jobs?status=failed&createdFrom={day}&createdTo={day}")
    assert NOTICE not in page.text and str(job["id"]) in page.text
    export = _export_url(page.text)
    assert export is not None
    csv = await client.get(export)
    assert csv.status_code == 200 and str(job["id"]) in csv.text
    [(kind, body)] = _bulk_filters(page.text)
    dry = await _dry_run(client, csrf, kind, body)
    assert dry.status_code == 200 and dry.json()["count"] == 1


#: Query strings whose filters the page must turn into ones the API takes.
ODD_FILTERS = {
    "blank-text-filters": "provider=%20%20&q=%09&recipient=&communicationId=%E3%80%80",
    "spaces-around-text": "provider=%20webhook%20&q=%20HTTP%20",
    "spaces-around-business": "businessId=%20acme%20",
    "blank-business": "businessId=%20",
    "created-to-the-last-day": "createdFrom=2000-01-01&createdTo=9999-12-31",
    "created-from-the-last-day": "createdFrom=9999-12-31&createdTo=9999-12-31",
    "the-first-day": "createdFrom=0001-01-01&createdTo=0001-01-01",
    "week-date": "createdFrom=2026-W01-1",
}


@pytest.mark.parametrize("query", ODD_FILTERS.values(), ids=ODD_FILTERS.keys())
@pytest.mark.parametrize("status", ["failed", "pending"])
async def test_every_export_and_bulk_action_the_page_offers_is_accepted_by_the_api(
    dash: Dashboard, status: str, query: str
) -> None:
    await dash.failed_job()
    client, csrf = await dash.signed_in("admin")  # a platform key: it may pick a business
    page = await client.get(f"/dashboard/jobs?status={status}&{query}")
    assert page.status_code == 200
    export = _export_url(page.text)
    assert export is not None
    csv = await client.get(export)
    assert csv.status_code == 200, (export, csv.text)
    [(kind, body)] = _bulk_filters(page.text)
    dry = await _dry_run(client, csrf, kind, body)
    assert dry.status_code == 200, (body, dry.text)


async def test_a_business_id_with_spaces_narrows_to_that_business(dash: Dashboard) -> None:
    acme = await dash.api.enqueue("acme_producer")
    globex = await dash.api.enqueue("globex_producer")
    client, _ = await dash.signed_in("admin")
    page = (await client.get("/dashboard/jobs?businessId=%20globex%20")).text
    assert str(globex["id"]) in page and str(acme["id"]) not in page
    assert 'name="businessId" value="globex"' in page
    assert 'data-business="globex"' in page  # the live counts ask /stats for "globex"


@pytest.mark.parametrize("status", ["failed", "pending"])
@pytest.mark.parametrize(
    "ignored",
    [
        "channel=fax",
        "errorType=maybe",
        "createdFrom=soon",
        "provider=" + "x" * 101,
        "channel=fax&errorType=nope&createdTo=someday&provider=" + "p" * 101,
    ],
)
async def test_a_filter_ignored_as_unreadable_offers_no_bulk_action(
    dash: Dashboard, status: str, ignored: str
) -> None:
    # Without it the bulk action would reach every job of the tab, not those the link meant.
    await dash.failed_job()
    await dash.api.enqueue("acme_producer", runAt="2040-01-01T00:00:00Z")
    client, _ = await dash.signed_in("admin")  # a platform key: it may pick a business
    page = (await client.get(f"/dashboard/jobs?status={status}&{ignored}")).text
    assert "was ignored" in page
    assert _bulk_filters(page) == []
    export = _export_url(page)  # read-only: still offered, and taken by the API
    assert export is not None and (await client.get(export)).status_code == 200
    assert "Bulk actions come back once the filter is corrected" in page
    assert "data-job-row" in page  # the (wider) list is still shown, with its note


async def test_a_business_key_naming_a_business_offers_its_bulk_action(dash: Dashboard) -> None:
    # A business key never picks a business: the parameter is not a filter it lost.
    await dash.failed_job()
    client, csrf = await dash.signed_in("acme_admin")
    page = (await client.get("/dashboard/jobs?status=failed&businessId=other")).text
    [(kind, body)] = _bulk_filters(page)
    assert (await _dry_run(client, csrf, kind, body)).json()["count"] == 1
