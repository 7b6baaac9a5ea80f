"""/docs renders commq's OpenAPI document in Chromium with nothing fetched from elsewhere."""

from __future__ import annotations

from playwright.sync_api import Browser, Route, expect

from .conftest import new_page
from .live import LiveServer


def test_swagger_ui_renders_the_api_from_this_server_alone(
    browser: Browser, live: LiveServer
) -> None:
    page = new_page(browser, live)
    elsewhere: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(live.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto("/docs")
    expect(
        page.locator(".opblock-summary-path", has_text="/communication-queue/jobs").first
    ).to_be_visible()
    assert page.locator(".opblock").count() > 20
    assert elsewhere == []
