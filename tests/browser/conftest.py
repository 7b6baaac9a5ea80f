"""Headless Debian Chromium, driven by Playwright's sync API, against a live server.

The tests are plain ``def`` functions (pytest-asyncio leaves them alone, and the
sync API refuses to run inside an event loop). Chromium is /usr/bin/chromium
(`make test` installs it); Playwright never downloads a browser of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from needs import missing

from .live import CHROMIUM, CHROMIUM_ARGS, LiveServer, live_server

#: Generous for a loaded 2-core machine; expectations return as soon as they hold.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """`commq serve` with a worker, over this test's own database.

    Parametrize it indirectly with a dict to add COMMQ_* settings.
    """
    with live_server(tmp_path, **getattr(request, "param", {})) as server:
        yield server


@pytest.fixture
def browser(live: LiveServer) -> Iterator[Browser]:
    """Debian's Chromium, headless; closed before the server stops (its streams with it)."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        yield launched
        launched.close()


def new_page(browser: Browser, live: LiveServer, width: int = 1280, height: int = 900) -> Page:
    """A page in a fresh browser context (its own cookies) at ``width`` pixels."""
    context = browser.new_context(
        base_url=live.url, viewport={"width": width, "height": height}, accept_downloads=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.csp_violations = []  # type: ignore[attr-defined]
    page.on("console", lambda message: _note_csp(page, message.text))
    page.on("pageerror", lambda error: page.csp_violations.append(str(error)))  # type: ignore[attr-defined]
    return page


def _note_csp(page: Page, text: str) -> None:
    if "Content Security Policy" in text or "Refused to" in text:
        page.csp_violations.append(text)  # type: ignore[attr-defined]


@pytest.fixture
def page(live: LiveServer, browser: Browser) -> Iterator[Page]:
    """A desktop-sized page; the test fails if any script error or CSP refusal happened."""
    opened = new_page(browser, live)
    yield opened
    violations = opened.csp_violations  # type: ignore[attr-defined]
    opened.context.close()
    assert violations == [], violations


def sign_in(page: Page, live: LiveServer, who: str = "acme_admin") -> None:
    """Sign in through the form, as a person would."""
    page.goto("/dashboard/login")
    page.get_by_label("API key").fill(live.keys[who])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # The new page's own scripts have run (buttons work, live updates started).
    page.wait_for_load_state("load")


def at(path: str) -> re.Pattern[str]:
    """A URL pattern for ``path`` on the live server (query string allowed)."""
    return re.compile(rf"^http://127\.0\.0\.1:\d+{re.escape(path)}(\?.*)?$")
