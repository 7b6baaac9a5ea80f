"""The jobs page's filters in headless Chromium: one the API would refuse is explained."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import sign_in
from .live import LiveServer


def test_dates_the_wrong_way_round_are_explained_beside_the_filter(
    page: Page, live: LiveServer
) -> None:
    live.receiver.status = 400
    live.wait_for(live.webhook()["id"], "failed")
    sign_in(page, live)
    page.goto("/dashboard/jobs?status=failed")
    expect(page.get_by_role("button", name="Retry all failed")).to_be_visible()
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Created from").fill("2026-05-03")
    page.get_by_label("Created to").fill("2026-05-01")
    page.get_by_role("button", name="Apply filters").click()
    notice = page.get_by_role("alert").filter(has_text="'Created to' must be after")
    expect(notice).to_be_visible()
    expect(page.get_by_label("Created to")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("link", name="Export CSV")).to_have_count(0)
    expect(page.get_by_role("button", name="Retry matching failed")).to_have_count(0)
    expect(page.locator("[data-job-row]")).to_have_count(0)

    page.get_by_label("Created to").fill("2026-05-03")  # corrected: the notice goes
    page.get_by_role("button", name="Apply filters").click()
    expect(notice).to_have_count(0)
    expect(page.get_by_role("link", name="Export CSV")).to_be_visible()
