"""The app in process (tests/api's fixture) plus signing in through the dashboard's form."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from api.conftest import Api, base_settings, running, with_providers
from commq.entrypoints.settings import Settings

#: A webhook the SSRF guard refuses (loopback is not allowed): it fails at once.
REFUSED_HOOK = "http://127.0.0.1:9/hook"

__all__ = ["Api", "Dashboard", "base_settings"]


@dataclass
class Dashboard:
    """The API fixture, and a browser-like client per signed-in key."""

    api: Api

    def browser(self) -> httpx.AsyncClient:
        """A fresh client with its own cookie jar, as a new browser would be."""
        transport = self.api.client._transport  # the same app in process
        return httpx.AsyncClient(transport=transport, base_url="http://commq.test")

    async def failed_job(self, who: str = "acme_producer", **fields: object) -> dict[str, object]:
        """A job that was sent once and failed for good."""
        body = {"channel": "webhook", "recipient": REFUSED_HOOK, "payload": {"body": {"n": 1}}}
        job = await self.api.enqueue(who, **{**body, **fields})
        await self.api.container.process_pass(None)
        response = await self.api.client.get(
            f"/communication-queue/{job['id']}", headers=self.api.as_("admin")
        )
        failed: dict[str, object] = response.json()
        assert failed["status"] == "failed", failed
        return failed

    async def signed_in(self, who: str) -> tuple[httpx.AsyncClient, str]:
        """A client signed in with ``who``'s key, and the session's CSRF token."""
        client = self.browser()
        response = await sign_in(client, self.api.keys[who])
        assert response.status_code == 303, response.text
        page = await client.get("/dashboard/jobs")
        return client, csrf_of(page.text)


def login_token(html: str) -> str:
    """The sign-in form's hidden CSRF field."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def csrf_of(html: str) -> str:
    """The session's CSRF token from a page's meta tag."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, html
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, key: str, then: str = "") -> httpx.Response:
    """Fill in and post the sign-in form, as a browser would."""
    form = await client.get("/dashboard/login")
    data = {"key": key, "csrf": login_token(form.text), "then": then}
    return await client.post("/dashboard/login", data=data)


@pytest.fixture
def settings(sqlite_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return with_providers(
        base_settings(sqlite_url, tmp_path),
        "email=outbox,sms=outbox,webhook=webhook",
        session_secret="dashboard-test-secret",
    )


@pytest.fixture
async def dash(settings: Settings):  # type: ignore[no-untyped-def]
    async with running(settings) as api:
        yield Dashboard(api)
