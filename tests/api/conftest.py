"""An app in process over a fresh SQLite database, with a key for every role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from commq.domain.permissions import Role
from commq.entrypoints.api.app import create_app
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.settings import Settings, parse_providers


@dataclass
class Api:
    """An HTTP client plus the keys and container behind it."""

    client: httpx.AsyncClient
    container: Container
    keys: dict[str, str]
    outbox: Path

    def as_(self, who: str) -> dict[str, str]:
        """Headers authenticating as one of the named keys."""
        return {"Authorization": f"Bearer {self.keys[who]}"}

    async def enqueue(self, who: str = "admin", **fields: Any) -> dict[str, Any]:
        """Enqueue one e-mail job (fields override the defaults) and return its JSON."""
        body: dict[str, Any] = {
            "channel": "email",
            "recipient": "ana@example.com",
            "payload": {"subject": "Hello", "text": "Hi Ana"},
        }
        if KEYS[who][1] is None:
            body["businessId"] = "acme"
        body.update(fields)
        response = await self.client.post(
            "/communication-queue/jobs", json=body, headers=self.as_(who)
        )
        assert response.status_code in (200, 201), response.text
        return response.json()


KEYS = {
    "admin": (Role.ADMIN, None),
    "acme_admin": (Role.ADMIN, "acme"),
    "acme_manager": (Role.MANAGER, "acme"),
    "acme_support": (Role.SUPPORT, "acme"),
    "acme_producer": (Role.PRODUCER, "acme"),
    "globex_admin": (Role.ADMIN, "globex"),
    "globex_producer": (Role.PRODUCER, "globex"),
    "platform_producer": (Role.PRODUCER, None),
}


def base_settings(database_url: str, tmp_path: Path) -> Settings:
    """Outbox providers, no backoff, quick polling."""
    return Settings(
        database_url=database_url,
        providers=parse_providers("email=outbox,sms=outbox,webhook=outbox"),
        outbox_dir=tmp_path / "outbox",
        retry_backoff_base=0.0,
        retry_backoff_max=0.0,
        poll_interval=0.05,
    )


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return base_settings(sqlite_url, tmp_path)


@pytest.fixture
async def api(settings: Settings, tmp_path: Path) -> AsyncIterator[Api]:
    async with _running(settings) as built:
        yield built


def with_providers(settings: Settings, providers: str, **changes: Any) -> Settings:
    """The same settings sending through other providers."""
    return replace(settings, providers=parse_providers(providers), **changes)


class _running:
    """Runs the app's lifespan and hands out a client."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app = create_app(settings, run_worker=False)
        self._lifespan: Any = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Api:
        self._lifespan = self._app.router.lifespan_context(self._app)
        await self._lifespan.__aenter__()
        container: Container = self._app.state.container
        keys = {}
        for name, (role, business) in KEYS.items():
            _, keys[name] = await container.keys.create(name, role, business)
        transport = httpx.ASGITransport(app=self._app)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://commq.test")
        return Api(self._client, container, keys, self._settings.outbox_dir)

    async def __aexit__(self, *exc: object) -> None:
        assert self._client is not None
        await self._client.aclose()
        await self._lifespan.__aexit__(None, None, None)


running = _running
