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
