"""`make screenshots`: every dashboard page at 1280 and 390 px wide, into a folder.

It runs `commq serve` over a fresh database in a temporary folder, fills it
with a small outage (failed webhooks, a firing alert), sent and scheduled
mail, a cancelled job and a suppressed recipient, then photographs each page.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from live import CHROMIUM, CHROMIUM_ARGS, LiveServer, live_server, suppress
from playwright.sync_api import Page, sync_playwright

WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}


def seed(live: LiveServer) -> dict[str, str]:
    """A morning with a webhook outage; returns a few job ids worth showing."""
    for n in range(14):
        live.enqueue(recipient=f"customer{n}@example.com", communicationId=f"welcome-{n}")
    live.enqueue(channel="sms", recipient="+14155550100", payload={"body": "Your code is 4711"})
    live.receiver.status = 503
    failed = [live.webhook(communicationId=f"order-{7000 + n}") for n in range(7)]
    for job in failed:
        live.wait_for(job["id"], "failed")
    for n in range(3):
        live.enqueue(runAt="2040-01-01T09:00:00Z", communicationId=f"reminder-{n}")
    cancelled = live.enqueue(runAt="2040-01-01T09:00:00Z", communicationId="promo-spring")
    live.api("acme_manager").post(f"/{cancelled['id']}/cancel")
    suppress(live.database_url, "bounced@example.com", "+14155550199")
    return {"failed": failed[0]["id"]}


def shoot(page: Page, folder: Path, name: str, width: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    print(f"  {folder / f'{name}-{width}.png'}")


def photograph(live: LiveServer, folder: Path, ids: dict[str, str]) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for width, (w, h) in WIDTHS.items():
            context = browser.new_context(base_url=live.url, viewport={"width": w, "height": h})
            page = context.new_page()
            page.goto("/dashboard/login")
            shoot(page, folder, "sign-in", width)
            page.get_by_label("API key").fill(live.keys["acme_admin"])
            page.get_by_role("button", name="Sign in").click()
            page.locator(".alert-banner li").first.wait_for()
            # A locator, not wait_for_function: the page's CSP refuses the eval that needs.
            page.locator("[data-chart] svg[role=img]").wait_for()
            shoot(page, folder, "overview", width)
            page.goto("/dashboard/jobs?status=failed")
            shoot(page, folder, "jobs-failed", width)
            page.get_by_role("button", name="Retry all failed").click()
            # The dry-run count opens the confirmation (or an announcement says why not).
            page.locator("dialog[open], #announcer:not(:empty)").first.wait_for()
            page.screenshot(path=str(folder / f"bulk-retry-{width}.png"))
            page.keyboard.press("Escape")
            page.goto(f"/dashboard/jobs/{ids['failed']}")
            shoot(page, folder, "job", width)
            page.goto("/dashboard/audit")
            shoot(page, folder, "audit", width)
            page.goto("/dashboard/suppressions")
            shoot(page, folder, "suppressions", width)
            context.close()
        browser.close()


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            "COMMQ_ALERT_FAILED_JOBS": "5",
            "COMMQ_ALERT_INTERVAL": "0.5",
            "COMMQ_ALERT_SCOPE": "business",
        }
        with live_server(Path(scratch), **env) as live:
            ids = seed(live)
            photograph(live, folder, ids)


if __name__ == "__main__":
    main()
