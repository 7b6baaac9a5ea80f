"""The header's "Job id" box, in headless Chromium: by keyboard, on a phone, when not found."""

from __future__ import annotations

from playwright.sync_api import Browser, Locator, Page, expect

from .conftest import at, new_page, sign_in
from .live import LiveServer


def _job_id_box(page: Page) -> Locator:
    return page.get_by_role("search", name="Open a job by id").get_by_label("Job id")


def test_a_pasted_job_id_opens_its_page_from_the_keyboard(page: Page, live: LiveServer) -> None:
    job = live.enqueue(runAt="2040-01-01T00:00:00Z")
    sign_in(page, live)
    page.get_by_role("link", name="Suppressions").focus()
    page.keyboard.press("Tab")  # the box comes straight after the menu
    expect(_job_id_box(page)).to_be_focused()
    page.keyboard.insert_text(f"  {job['id']}\t ")  # as pasted from a log line
    page.keyboard.press("Enter")
    expect(page).to_have_url(at(f"/dashboard/jobs/{job['id']}"))
    expect(page.locator("h1")).to_have_text(f"Job {job['id']}")
    expect(page.locator("[data-job-status]")).to_have_text("pending")


def test_another_business_job_and_an_unknown_id_both_say_not_found(
    page: Page, live: LiveServer
) -> None:
    theirs = live.enqueue("admin", businessId="globex")
    sign_in(page, live)
    for typed in (theirs["id"], "not-a-job"):
        _job_id_box(page).fill(typed)
        page.get_by_role("button", name="Open", exact=True).click()
        expect(page.locator("h1")).to_have_text("Job not found")
        expect(page.locator("main")).to_contain_text(
            "There is no such job, or it belongs to another business."
        )
        expect(page.locator("main")).not_to_contain_text(theirs["id"])
    expect(_job_id_box(page)).to_be_visible()  # ready for the next try


def test_an_empty_or_blank_job_id_asks_again_and_goes_nowhere(page: Page, live: LiveServer) -> None:
    sign_in(page, live)
    page.goto("/dashboard/jobs?status=failed")
    page.evaluate("window.__sameDocument = true")
    box = _job_id_box(page)
    for typed in ("", "    "):
        box.fill(typed)
        box.press("Enter")
        expect(box).to_be_focused()
        expect(box).to_have_value("")
        assert page.evaluate("document.getElementById('open-job-id').validity.valueMissing")
    expect(page).to_have_url(at("/dashboard/jobs"))
    assert page.evaluate("window.__sameDocument") is True  # no navigation at all


def test_the_job_id_box_works_on_a_phone(browser: Browser, live: LiveServer) -> None:
    job = live.enqueue(runAt="2040-01-01T00:00:00Z")
    phone = new_page(browser, live, width=390, height=844)
    sign_in(phone, live)
    box = _job_id_box(phone)
    expect(box).to_be_in_viewport()
    width = box.bounding_box()
    assert width is not None and width["width"] >= 200, width  # room to see a pasted id
    assert phone.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    box.fill(job["id"])
    phone.get_by_role("button", name="Open", exact=True).click()
    expect(phone).to_have_url(at(f"/dashboard/jobs/{job['id']}"))
    assert phone.csp_violations == []  # type: ignore[attr-defined]
    phone.context.close()
