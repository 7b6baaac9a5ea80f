"""A removed API key keeps working through the API for at most KEY_CACHE_SECONDS."""

from __future__ import annotations

from sqlalchemy import text

from commq.adapters.store import SqlKeyStore
from commq.application.keys import KEY_CACHE_SECONDS, KeyService
from fakes.clocks import ManualClock

from .conftest import Api

Q = "/communication-queue"


async def test_a_removed_key_is_refused_once_the_cache_bound_has_passed(api: Api) -> None:
    clock = ManualClock(0.0)
    api.container.keys = KeyService(SqlKeyStore(api.container.engine), clock=clock)
    headers = api.as_("acme_support")
    assert (await api.client.get(f"{Q}/stats", headers=headers)).status_code == 200
    async with api.container.engine.begin() as conn:
        await conn.execute(text("DELETE FROM api_keys WHERE name = 'acme_support'"))
    clock.now += KEY_CACHE_SECONDS / 2
    assert (await api.client.get(f"{Q}/stats", headers=headers)).status_code == 200
    clock.now += KEY_CACHE_SECONDS / 2 + 0.01
    assert (await api.client.get(f"{Q}/stats", headers=headers)).status_code == 401
    # The other keys were never affected.
    assert (await api.client.get(f"{Q}/stats", headers=api.as_("admin"))).status_code == 200
