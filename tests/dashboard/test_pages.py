"""The pages over HTTP: what each shows, to whom, and how safely."""

from __future__ import annotations

import re

import pytest

from .conftest import Dashboard

HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def _buttons(html: str) -> set[str]:
    return set(re.findall(r'data-action="([a-z-]+)"', html))


async def test_the_overview_shows_a_card_per_status_with_its_count(dash: Dashboard) -> None:
    await dash.failed_job()  # first: it sends every due job
    await dash.api.enqueue("acme_producer")
    await dash.api.enqueue("acme_producer")
    client, _ = await dash.signed_in("acme_support")
    page = (await client.get("/dashboard")).text
    for label in ("Pending", "Processing", "Failed", "Completed", "Cancelled"):
        assert f'<span class="card-label">{label}</span>' in page
    assert '<span class="card-count" data-stat="pending">2</span>' in page
    assert '<span class="card-count" data-stat="failed">1</span>' in page
    assert 'data-share="pending">67%</span>' in page
    assert 'data-share="failed">33%</span>' in page
    assert "Oldest pending job waiting" in page and "Failure rate" in page


async def test_the_jobs_page_lists_one_tab_with_its_filters(dash: Dashboard) -> None:
    failed = await dash.failed_job()
    pending = await dash.api.enqueue("acme_producer", recipient="bo@example.com")
    client, _ = await dash.signed_in("acme_admin")
    everything = (await client.get("/dashboard/jobs")).text
    assert pending["id"] in everything and failed["id"] in everything
    only_failed = (await client.get("/dashboard/jobs?status=failed")).text
    assert failed["id"] in only_failed and pending["id"] not in only_failed
    assert 'aria-current="page">\n    Failed' in only_failed
    by_channel = (await client.get("/dashboard/jobs?channel=email")).text
    assert pending["id"] in by_channel and failed["id"] not in by_channel
    params = {"q": str(failed["lastError"])[:12], "errorType": str(failed["errorType"])}
    by_error = (await client.get("/dashboard/jobs", params=params)).text
    assert failed["id"] in by_error and pending["id"] not in by_error
    params["q"] = "no such error text"
    assert failed["id"] not in (await client.get("/dashboard/jobs", params=params)).text


async def test_unreadable_filters_are_noted_and_ignored(dash: Dashboard) -> None:
    client, _ = await dash.signed_in("acme_admin")
    page = await client.get(
        "/dashboard/jobs?status=lost&channel=fax&createdFrom=yesterday&cursor=x"
    )
    assert page.status_code == 200
    assert "status &#39;lost&#39; is not one of" in page.text
    assert "createdFrom must be a date" in page.text
    assert "no longer valid" in page.text


async def test_created_to_the_last_day_of_9999_lists_every_job(dash: Dashboard) -> None:
    job = await dash.api.enqueue("acme_producer")
    client, _ = await dash.signed_in("acme_admin")
    page = await client.get("/dashboard/jobs?createdFrom=2000-01-01&createdTo=9999-12-31")
    assert page.status_code == 200
    assert job["id"] in page.text


async def test_pages_follow_the_keyset_cursor(dash: Dashboard) -> None:
    ids = [(await dash.api.enqueue("acme_producer"))["id"] for _ in range(53)]
    client, _ = await dash.signed_in("acme_admin")
    first = (await client.get("/dashboard/jobs")).text
    shown = set(re.findall(r'data-job-row="([^"]+)"', first))
    assert len(shown) == 50
    [next_link] = re.findall(r'<a id="next-page" href="([^"]+)" rel="next">Next page</a>', first)
    second = (await client.get(next_link.replace("&amp;", "&"))).text
    rest = set(re.findall(r'data-job-row="([^"]+)"', second))
    assert shown | rest == set(ids) and not shown & rest
    assert 'rel="next"' not in second and "First page" in second


@pytest.mark.parametrize(
    ("who", "on_failed", "on_pending"),
    [
        ("acme_support", {"retry"}, set()),
        ("acme_manager", {"retry"}, {"cancel"}),
        ("acme_admin", {"retry", "delete"}, {"cancel", "delete"}),
    ],
)
async def test_rows_offer_only_the_actions_the_role_may_use(
    dash: Dashboard, who: str, on_failed: set[str], on_pending: set[str]
) -> None:
    failed = await dash.failed_job()
    pending = await dash.api.enqueue("acme_producer", runAt="2040-01-01T00:00:00Z")
    client, _ = await dash.signed_in(who)
    assert _buttons((await client.get("/dashboard/jobs?status=failed")).text) == on_failed
    assert _buttons((await client.get("/dashboard/jobs?status=pending")).text) == on_pending
    assert _buttons((await client.get(f"/dashboard/jobs/{failed['id']}")).text) == on_failed
    assert _buttons((await client.get(f"/dashboard/jobs/{pending['id']}")).text) == on_pending


async def test_bulk_buttons_follow_the_role(dash: Dashboard) -> None:
    support, _ = await dash.signed_in("acme_support")
    manager, _ = await dash.signed_in("acme_manager")
    assert 'data-bulk="retry"' in (await support.get("/dashboard/jobs?status=failed")).text
    assert 'data-bulk="cancel"' not in (await support.get("/dashboard/jobs?status=pending")).text
    assert 'data-bulk="cancel"' in (await manager.get("/dashboard/jobs?status=pending")).text
    filtered = (await manager.get("/dashboard/jobs?status=failed&channel=sms")).text
    assert "Retry matching failed" in filtered
    assert """data-filter='{"channel": "sms"}'""" in filtered
    assert "/communication-queue/failed/export.csv?channel=sms" in filtered


async def test_the_job_page_shows_payload_history_and_delivery_status(dash: Dashboard) -> None:
    job = await dash.failed_job(payload={"body": {"order": 7, "note": "späť"}})
    client, _ = await dash.signed_in("acme_support")
    page = (await client.get(f"/dashboard/jobs/{job['id']}")).text
    assert "&#34;order&#34;: 7" in page and "späť" in page  # indented JSON, escaped
    assert '<span class="badge outcome-permanent_error">permanent error</span>' in page
    assert "Delivery status" in page and "no provider report yet" in page
    assert "Attempt history" in page and " ms</td>" in page
    assert job["recipient"] in page


async def test_another_business_job_is_not_found(dash: Dashboard) -> None:
    job = await dash.api.enqueue("globex_producer")
    client, _ = await dash.signed_in("acme_admin")
    response = await client.get(f"/dashboard/jobs/{job['id']}")
    assert response.status_code == 404
    assert "Job not found" in response.text


async def test_user_supplied_text_is_escaped_on_every_page(dash: Dashboard) -> None:
    job = await dash.failed_job(
        communicationId=HOSTILE, payload={"body": {"x": HOSTILE}}, idempotencyKey=HOSTILE
    )
    client, _ = await dash.signed_in("acme_admin")
    for path in ("/dashboard/jobs", f"/dashboard/jobs/{job['id']}", "/dashboard/jobs?q=" + HOSTILE):
        page = (await client.get(path)).text
        assert "<script>window" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page, path


async def test_every_dashboard_response_forbids_inline_script(dash: Dashboard) -> None:
    job = await dash.failed_job()
    client, _ = await dash.signed_in("acme_admin")
    paths = ["/dashboard", "/dashboard/jobs", f"/dashboard/jobs/{job['id']}", "/dashboard/login"]
    for path in [*paths, "/dashboard/static/dashboard.js", "/dashboard/jobs/missing"]:
        response = await client.get(path, follow_redirects=True)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp, path
        assert "unsafe" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        if path.endswith(".js"):
            continue
        assert response.headers["cache-control"] == "no-store"
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), path
        assert not re.search(r"\son[a-z]+=", response.text), path


async def test_the_vendored_script_and_the_styles_are_served_by_commq(dash: Dashboard) -> None:
    client = dash.browser()
    htmx = await client.get("/dashboard/static/htmx.min.js")
    assert htmx.status_code == 200 and "javascript" in htmx.headers["content-type"]
    assert 'version:"2.0.11"' in htmx.text
    page = (await client.get("/dashboard/login")).text
    for src in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert src.startswith(("/dashboard", "#")), src


async def test_a_platform_admin_sees_every_business_and_may_narrow(dash: Dashboard) -> None:
    acme = await dash.api.enqueue("acme_producer")
    globex = await dash.api.enqueue("globex_producer")
    client, _ = await dash.signed_in("admin")
    everything = (await client.get("/dashboard/jobs")).text
    assert acme["id"] in everything and globex["id"] in everything
    narrowed = (await client.get("/dashboard/jobs?businessId=globex")).text
    assert globex["id"] in narrowed and acme["id"] not in narrowed
    overview = (await client.get("/dashboard?businessId=globex")).text
    assert 'data-stat="pending">1</span>' in overview


async def test_a_business_key_cannot_narrow_to_another_business(dash: Dashboard) -> None:
    globex = await dash.api.enqueue("globex_producer")
    client, _ = await dash.signed_in("acme_admin")
    page = (await client.get("/dashboard/jobs?businessId=globex")).text
    assert globex["id"] not in page
    assert 'name="businessId"' not in page
