"""POST /jobs while the database is unavailable: no enqueue is acknowledged that was not
stored, the refusal is a 503 with Retry-After, and a client that retries with its
idempotencyKey ends with exactly one job.

PostgreSQL restarting: the API reaches the real server through a TCP proxy on 127.0.0.1
that the test takes down (connections cut, new ones refused) and brings back. SQLite:
another process holds the write lock past the busy timeout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from commq.adapters.store import engine as store_engine
from commq.adapters.store import make_engine
from fakes.tcp_proxy import TcpProxy
from sqlite_lock import write_lock_held

from .conftest import Api, base_settings, running


def _job(key: str) -> dict[str, object]:
    return {
        "channel": "sms",
        "recipient": "+14155550100",
        "payload": {"body": "Your code is 1234"},
        "idempotencyKey": key,
    }


async def _post(api: Api, key: str) -> httpx.Response:
    return await api.client.post(
        "/communication-queue/jobs", json=_job(key), headers=api.as_("acme_producer")
    )


async def _keys_stored(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT idempotency_key, count(*) FROM jobs GROUP BY idempotency_key")
            )
            return {key: count for key, count in rows}
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_an_enqueue_during_an_outage_is_refused_and_its_retry_stores_it_once(
    postgres_url: str, tmp_path: Path
) -> None:
    server = make_url(postgres_url)
    with TcpProxy(server.host or "127.0.0.1", server.port or 5432) as proxy:
        proxied = server.set(port=proxy.port).render_as_string(hide_password=False)
        async with running(base_settings(proxied, tmp_path)) as api:
            assert (await _post(api, "before")).status_code == 201
            # Enqueues under way as the connections are cut, then while they are refused.
            racing = [asyncio.create_task(_post(api, f"racing-{i}")) for i in range(20)]
            await asyncio.sleep(0)
            proxy.down()
            answers = await asyncio.wait_for(asyncio.gather(*racing), 30)
            during = await asyncio.wait_for(_post(api, "during"), 30)
            proxy.up()
            refused = [a for a in answers if a.status_code != 201] + [during]
            retried = {
                key: (await _post(api, key)).status_code
                for key in [f"racing-{i}" for i in range(20)] + ["during"]
                if key == "during" or answers[int(key.split("-")[1])].status_code != 201
            }
    # Never a 2xx for what was not stored: a refusal is a 5xx problem the client retries.
    assert during.status_code == 503, during.text
    assert all(a.status_code in (201, 503) for a in answers), [a.text for a in refused]
    assert all(a.headers["content-type"] == "application/problem+json" for a in refused)
    assert all(a.headers.get("retry-after") for a in refused)
    # Retried with the same key: stored now (201), or found stored already (200).
    assert set(retried.values()) <= {200, 201}
    stored = await _keys_stored(postgres_url)
    assert stored == {key: 1 for key in ["before", "during", *(f"racing-{i}" for i in range(20))]}


async def test_an_enqueue_while_sqlite_is_locked_past_the_busy_timeout_is_503_then_stored(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # commq waits 10 s for another process's write lock; 100 ms stands for it here.
    pragmas = [p for p in store_engine._SQLITE_PRAGMAS if "busy_timeout" not in p]
    monkeypatch.setattr(store_engine, "_SQLITE_PRAGMAS", (*pragmas, "PRAGMA busy_timeout=100"))
    async with running(base_settings(sqlite_url, tmp_path)) as api:
        assert (await _post(api, "before")).status_code == 201
        async with write_lock_held(str(make_url(sqlite_url).database), 1.0):
            during = await _post(api, "during")
        again = await _post(api, "during")
    assert (during.status_code, during.headers.get("retry-after")) == (503, "2"), during.text
    assert again.status_code == 201, again.text
    assert await _keys_stored(sqlite_url) == {"before": 1, "during": 1}
