"""Layout details a person notices: badges on a phone, the chart's scale with no traffic."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from .conftest import new_page, sign_in
from .live import LiveServer


def test_an_error_type_badge_stays_on_one_line_on_a_phone(
    browser: Browser, live: LiveServer
) -> None:
    # Refused by the SSRF guard at once, with a long error text beside its badge.
    hook = {"channel": "webhook", "recipient": "http://10.0.0.1/hook", "payload": {"body": {}}}
    job = live.enqueue(**hook)
    live.wait_for(job["id"], "failed")
    phone = new_page(browser, live, width=390, height=844)
    sign_in(phone, live)
    phone.goto("/dashboard/jobs?status=failed")
    row = phone.locator(f"#row-{job['id']}")
    error_badge = row.locator(".error-cell .badge")
    expect(error_badge).to_have_text("permanent")
    status_badge = row.locator(".badge.status-failed")
    error_box, status_box = error_badge.bounding_box(), status_badge.bounding_box()
    assert error_box is not None and status_box is not None
    # Squeezed by the error text beside it, it broke into one letter or two per line.
    assert error_box["height"] < status_box["height"] * 1.5, (error_box, status_box)
    assert phone.csp_violations == []  # type: ignore[attr-defined]
    phone.context.close()


def test_the_chart_of_a_quiet_day_has_a_scale_without_repeated_numbers(
    page: Page, live: LiveServer
) -> None:
    sign_in(page, live)
    chart = page.locator("[data-chart] svg[role=img]")
    expect(chart).to_have_attribute(
        "aria-label", "Sent and failed jobs per hour over the last 24 hours: 0 sent, 0 failed."
    )
    scale = chart.locator(":scope > text").all_text_contents()[:3]  # then the hours
    assert scale == ["0", "1", "2"], scale  # was 0, 1, 1: the middle line rounded up
