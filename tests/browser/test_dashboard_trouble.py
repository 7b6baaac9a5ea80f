"""The dashboard when things go wrong: the server away or failing, a session gone."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect

from .conftest import at, sign_in
from .live import LiveServer

FAILED_TAB = re.compile(r".*/dashboard/jobs\?status=failed$")


def test_a_tab_that_cannot_be_fetched_says_so_and_leaves_the_page_as_it_was(
    page: Page, live: LiveServer
) -> None:
    job = live.enqueue(runAt="2040-01-01T00:00:00Z")
    sign_in(page, live)
    page.goto("/dashboard/jobs")
    expect(page.locator(f"#row-{job['id']}")).to_be_visible()
    announcer = page.locator("#announcer")

    page.route(FAILED_TAB, lambda route: route.abort("connectionrefused"))
    page.locator("#tab-failed").click()
    expect(announcer).to_have_text(re.compile("The server could not be reached"))
    expect(page.locator(f"#row-{job['id']}")).to_be_visible()  # the table is still there
    expect(page).to_have_url(at("/dashboard/jobs"))

    def fail(route: Route) -> None:
        route.fulfill(status=500, content_type="application/problem+json", body="{}")

    page.unroute(FAILED_TAB)
    page.route(FAILED_TAB, fail)
    page.locator("#tab-failed").click()
    expect(announcer).to_have_text(re.compile(r"could not be updated \(500"))
    expect(page.locator(f"#row-{job['id']}")).to_be_visible()


def test_a_session_that_ended_sends_a_tab_click_to_sign_in_and_back(
    page: Page, live: LiveServer
) -> None:
    sign_in(page, live)
    page.goto("/dashboard/jobs")
    expect(page.locator("#tab-failed")).to_be_visible()
    page.context.clear_cookies()  # signed out elsewhere, expired, or its key removed
    page.locator("#tab-failed").click()
    expect(page).to_have_url(at("/dashboard/login"))
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    page.get_by_label("API key").fill(live.keys["acme_admin"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(at("/dashboard/jobs"))
    expect(page.locator("#tab-failed")).to_have_attribute("aria-current", "page")


def test_the_keyboard_keeps_its_place_after_a_row_action_or_a_declined_bulk_action(
    page: Page, live: LiveServer
) -> None:
    live.receiver.status = 400
    jobs = [live.webhook(communicationId=f"order-{n}") for n in range(3)]
    for job in jobs:
        live.wait_for(job["id"], "failed")
    live.receiver.status = 200  # retried jobs complete and leave the Failed tab
    sign_in(page, live, "acme_support")
    page.goto("/dashboard/jobs?status=failed")
    rows = page.locator("[data-job-row]")
    expect(rows).to_have_count(3)
    first, second = (rows.nth(n).get_attribute("data-job-row") for n in (0, 1))

    page.locator(f"#retry-{first}").focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#row-{first}")).to_have_count(0)
    # The retried row is gone; focus is on the Retry of the row that took its place.
    expect(page.locator(f"#retry-{second}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("button", name=re.compile("^Retry job"))).to_be_focused()

    bulk = page.get_by_role("button", name="Retry all failed")
    bulk.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#confirm")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#announcer")).to_have_text("Nothing was changed.")
    expect(bulk).to_be_focused()
