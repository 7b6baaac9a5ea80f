"""The dashboard in headless Chromium against a live `commq serve` with its worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import at, new_page, sign_in
from .live import LiveServer, suppress

HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def _card(page: Page, status: str):  # type: ignore[no-untyped-def]
    return page.locator(f".card-count[data-stat={status}]")


def test_signing_in_with_the_api_key_opens_the_overview(page: Page, live: LiveServer) -> None:
    page.goto("/dashboard/jobs")
    expect(page).to_have_url(at("/dashboard/login"))
    page.get_by_label("API key").fill("cq_000000000000_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That API key is not valid.")
    page.get_by_label("API key").fill(live.keys["acme_admin"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(at("/dashboard/jobs"))
    [cookie] = [c for c in page.context.cookies() if c["name"] == "commq_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session
    page.get_by_role("link", name="Overview").click()
    for label in ("Pending", "Processing", "Failed", "Completed", "Cancelled"):
        expect(page.locator(".card-label", has_text=label)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(at("/dashboard/login"))
    page.goto("/dashboard")
    expect(page).to_have_url(at("/dashboard/login"))


def test_a_failing_job_appears_without_reloading(page: Page, live: LiveServer) -> None:
    sign_in(page, live)
    expect(_card(page, "failed")).to_have_text("0")
    page.evaluate("window.__sameDocument = true")
    live.receiver.status = 400
    live.webhook()
    expect(_card(page, "failed")).to_have_text("1")
    expect(page.locator("[data-share=failed]")).to_have_text("100%")
    assert page.evaluate("window.__sameDocument") is True

    page.goto("/dashboard/jobs?status=failed")
    expect(page.locator("[data-job-row]")).to_have_count(1)
    page.evaluate("window.__sameDocument = true")
    second = live.webhook(communicationId="order-2")
    expect(page.locator(f"#row-{second['id']}")).to_be_visible()
    expect(page.locator("[data-job-row]")).to_have_count(2)
    expect(page.locator(".tab-count[data-stat=failed]")).to_have_text("2")
    assert page.evaluate("window.__sameDocument") is True


def test_retry_from_the_failed_table_then_read_the_history(page: Page, live: LiveServer) -> None:
    live.receiver.status = 503
    job = live.webhook(communicationId="outage-1")
    live.wait_for(job["id"], "failed")
    sign_in(page, live, "acme_support")
    page.goto("/dashboard/jobs?status=failed")
    row = page.locator(f"#row-{job['id']}")
    expect(row).to_contain_text("HTTP 503")
    live.receiver.status = 200
    row.get_by_role("button", name="Retry").click()
    expect(page.locator("#announcer")).to_have_text(f"Job {job['id']} queued for retry")
    expect(row).to_have_count(0)  # it completed, and the table followed
    live.wait_for(job["id"], "completed")

    page.goto(f"/dashboard/jobs/{job['id']}")
    expect(page.locator("[data-job-status]")).to_have_text("completed")
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("transient error")
    expect(history.nth(0)).to_contain_text("HTTP 503")
    expect(history.nth(1)).to_contain_text("succeeded")
    expect(page.locator("pre.payload")).to_contain_text('"event": "order.shipped"')


def test_row_actions_work_from_the_keyboard(page: Page, live: LiveServer) -> None:
    job = live.enqueue(runAt="2040-01-01T00:00:00Z")
    sign_in(page, live, "acme_manager")
    page.goto("/dashboard/jobs?status=pending")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    cancel = page.locator(f"#cancel-{job['id']}")
    cancel.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#announcer")).to_have_text(f"Job {job['id']} cancelled")
    expect(page.locator(f"#row-{job['id']}")).to_have_count(0)


def test_support_sees_no_cancel_or_delete_and_the_server_refuses_anyway(
    page: Page, live: LiveServer
) -> None:
    pending = live.enqueue(runAt="2040-01-01T00:00:00Z")
    live.receiver.status = 400
    failed = live.webhook()
    live.wait_for(failed["id"], "failed")
    sign_in(page, live, "acme_support")
    page.goto("/dashboard/jobs")
    expect(page.locator("[data-job-row]")).to_have_count(2)
    expect(page.get_by_role("button", name=re.compile("^Retry job"))).to_have_count(1)
    expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
    page.goto(f"/dashboard/jobs/{pending['id']}")
    expect(page.locator("[data-job-status]")).to_have_text("pending")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    status = page.evaluate(
        """async (id) => (await fetch('/communication-queue/' + id + '/cancel', {method: 'POST',
             headers: {'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}}
           )).status""",
        pending["id"],
    )
    assert status == 403
    assert live.api().get(f"/{pending['id']}").json()["status"] == "pending"


def test_a_script_hidden_in_user_text_never_runs(page: Page, live: LiveServer) -> None:
    live.receiver.status = 400
    job = live.webhook(communicationId=HOSTILE, idempotencyKey=HOSTILE)
    live.wait_for(job["id"], "failed")
    sign_in(page, live)
    page.goto("/dashboard/jobs?status=failed")
    expect(page.locator(f"#row-{job['id']}")).to_contain_text(HOSTILE)
    page.goto(f"/dashboard/jobs/{job['id']}")
    expect(page.get_by_role("link", name=HOSTILE)).to_be_visible()
    page.get_by_role("link", name=HOSTILE).click()  # the communication filter: text in a URL
    expect(page.locator(f"#row-{job['id']}")).to_be_visible()
    expect(page.locator("#f-communication")).to_have_value(HOSTILE)
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x]").count() == 0


def test_the_pages_fit_a_phone_screen(browser: Browser, live: LiveServer) -> None:
    live.receiver.status = 400
    job = live.webhook(communicationId="a-rather-long-communication-identifier-0123456789")
    live.wait_for(job["id"], "failed")
    phone = new_page(browser, live, width=390, height=844)
    sign_in(phone, live)
    for path in ("/dashboard", "/dashboard/jobs", f"/dashboard/jobs/{job['id']}"):
        phone.goto(path)
        expect(phone.locator("h1")).to_be_visible()
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
    phone.goto("/dashboard/jobs?status=failed")
    expect(phone.get_by_role("button", name=f"Retry job {job['id']}")).to_be_in_viewport()
    assert phone.csp_violations == []  # type: ignore[attr-defined]
    phone.context.close()


def test_filters_narrow_the_table_and_keep_the_address(page: Page, live: LiveServer) -> None:
    live.enqueue(channel="sms", recipient="+14155550100", payload={"body": "hi"})
    email = live.enqueue(runAt="2040-01-01T00:00:00Z")
    sign_in(page, live)
    page.goto("/dashboard/jobs")
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Channel").select_option("email")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"channel=email"))
    expect(page.locator("[data-job-row]")).to_have_count(1)
    expect(page.locator(f"#row-{email['id']}")).to_be_visible()


ALERTING = {
    "COMMQ_ALERT_FAILED_JOBS": "1",
    "COMMQ_ALERT_INTERVAL": "0.2",
    "COMMQ_ALERT_SCOPE": "business",
}


@pytest.mark.parametrize("live", [ALERTING], indirect=True, ids=["alerting"])
def test_the_alert_banner_shows_while_an_alert_fires(page: Page, live: LiveServer) -> None:
    sign_in(page, live)
    banner = page.locator("#alert-banner")
    expect(banner).to_be_hidden()
    live.receiver.status = 400
    for _ in range(2):
        live.wait_for(live.webhook()["id"], "failed")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Queue Health Alert: 2 jobs have failed")
    for job in live.api("acme_admin").get("/jobs?status=failed").json()["items"]:
        live.api("acme_admin").delete(f"/{job['id']}")
    expect(banner).to_be_hidden()


def test_removing_a_suppressed_recipient(page: Page, live: LiveServer) -> None:
    suppress(live.database_url, "bounced@example.com")
    sign_in(page, live, "acme_manager")
    page.get_by_role("link", name="Suppressions").click()
    page.wait_for_url(at("/dashboard/suppressions"))  # loaded, scripts included
    row = page.locator("tr", has_text="bounced@example.com")
    row.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("dialog")).to_contain_text("Remove bounced@example.com")
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("#announcer")).to_have_text("bounced@example.com is no longer suppressed")
    expect(row).to_have_count(0)


def test_bulk_retry_asks_with_the_dry_run_count_first(page: Page, live: LiveServer) -> None:
    live.receiver.status = 503
    outage = [live.webhook(communicationId=f"order-{n}") for n in range(3)]
    for job in outage:
        live.wait_for(job["id"], "failed")
    sign_in(page, live, "acme_manager")
    page.goto("/dashboard/jobs?status=failed")
    expect(page.locator("[data-job-row]")).to_have_count(3)

    page.get_by_role("button", name="Retry all failed").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Retry 3 failed jobs?")
    dialog.get_by_role("button", name="Not now").click()
    expect(page.locator("#announcer")).to_have_text("Nothing was changed.")
    assert live.api().get("/stats").json()["failed"] == 3

    live.receiver.status = 200
    page.get_by_role("button", name="Retry all failed").click()
    expect(dialog).to_contain_text("Retry 3 failed jobs?")
    dialog.get_by_role("button", name="Retry 3 jobs").click()
    expect(page.locator("#announcer")).to_have_text("3 failed jobs retried")
    for job in outage:
        live.wait_for(job["id"], "completed")
    expect(page.locator("[data-job-row]")).to_have_count(0)


def test_export_csv_downloads_what_the_filter_shows(page: Page, live: LiveServer) -> None:
    live.receiver.status = 400
    webhook = live.webhook(communicationId="=HYPERLINK(evil)")
    live.wait_for(webhook["id"], "failed")
    live.enqueue(
        channel="sms", recipient="+14155550100", payload={"body": "x"}, runAt="2040-01-01T00:00:00Z"
    )
    sign_in(page, live, "acme_support")
    page.goto("/dashboard/jobs?status=failed&channel=webhook")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    saved = download.value.path()
    text = saved.read_text()
    header, *rows = text.strip().splitlines()
    assert "id" in header and "status" in header
    assert len(rows) == 1 and webhook["id"] in rows[0]
    assert "'=HYPERLINK(evil)" in rows[0]  # no formula reaches a spreadsheet
    assert download.value.suggested_filename.endswith(".csv")


def test_the_overview_draws_the_last_24_hours(page: Page, live: LiveServer) -> None:
    live.wait_for(live.enqueue()["id"], "completed")
    live.receiver.status = 400
    live.wait_for(live.webhook()["id"], "failed")
    sign_in(page, live)
    chart = page.locator("[data-chart] svg[role=img]")
    expect(chart).to_have_attribute("aria-label", re.compile(r"1 sent, 1 failed"))
    page.get_by_text("Show the numbers").click()
    expect(page.locator("[data-chart] table tbody tr")).to_have_count(24)
