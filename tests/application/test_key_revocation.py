"""KeyService creates, lists and revokes keys over the real SQLite store, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlKeyStore
from commq.adapters.store.tables import audit_events
from commq.application.keys import KEY_CACHE_SECONDS, KeyService
from commq.domain.audit import Principal
from commq.domain.errors import KeyNotFoundError, LastAdminKeyError
from commq.domain.permissions import Role
from fakes.clocks import ManualClock

OPERATOR = Principal("cli", "commq cli", Role.ADMIN, None)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(engine: AsyncEngine, clock: ManualClock) -> KeyService:
    return KeyService(SqlKeyStore(engine), clock=clock)


async def _audit(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(audit_events))).mappings().all()
    return [dict(row) for row in rows]


async def test_a_key_is_revoked_by_its_id_or_its_prefix(service: KeyService) -> None:
    by_id, _ = await service.create("shop", Role.PRODUCER, "acme")
    by_prefix, _ = await service.create("helpdesk", Role.SUPPORT, "acme")
    assert (await service.revoke(by_id.id, OPERATOR)).id == by_id.id
    assert (await service.revoke(by_prefix.prefix, OPERATOR)).id == by_prefix.id
    assert await service.list_keys() == []


async def test_the_revocation_is_audited_naming_the_key_and_the_operator(
    service: KeyService, engine: AsyncEngine
) -> None:
    stored, _ = await service.create("shop", Role.PRODUCER, "acme")
    await service.revoke(stored.id, OPERATOR)
    [event] = [e for e in await _audit(engine) if e["action"] == "key.revoke"]
    assert {k: event[k] for k in ("action", "actor_key_id", "actor_name", "role")} == {
        "action": "key.revoke",
        "actor_key_id": "cli",
        "actor_name": "commq cli",
        "role": "admin",
    }
    assert (event["business_id"], event["job_id"], event["count"]) == ("acme", None, None)
    assert event["filter"] == {
        "keyId": stored.id,
        "prefix": stored.prefix,
        "name": "shop",
        "role": "producer",
    }


@pytest.mark.parametrize("reference", ["0123456789ab", "no-such-id", ""])
async def test_an_unknown_key_is_refused_and_nothing_is_audited(
    service: KeyService, engine: AsyncEngine, reference: str
) -> None:
    await service.create("shop", Role.PRODUCER, "acme")
    with pytest.raises(KeyNotFoundError, match="no API key"):
        await service.revoke(reference, OPERATOR)
    assert len(await service.list_keys()) == 1
    assert await _audit(engine) == []


async def test_the_last_admin_platform_key_is_revoked_only_when_forced(
    service: KeyService, engine: AsyncEngine
) -> None:
    root, _ = await service.create("root", Role.ADMIN, None)
    await service.create("acme ops", Role.ADMIN, "acme")
    with pytest.raises(LastAdminKeyError):
        await service.revoke(root.id, OPERATOR)
    assert await _audit(engine) == []
    await service.revoke(root.id, OPERATOR, force=True)
    assert [key.name for key in await service.list_keys()] == ["acme ops"]


async def test_a_revoked_key_stops_at_once_where_it_was_revoked_and_within_the_bound_elsewhere(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    here = KeyService(SqlKeyStore(engine), clock=clock)
    elsewhere = KeyService(SqlKeyStore(engine), clock=clock)  # another API process
    stored, plain = await here.create("shop", Role.PRODUCER, "acme")
    assert await here.authenticate(plain) is not None
    assert await elsewhere.authenticate(plain) is not None
    await here.revoke(stored.prefix, OPERATOR)
    assert await here.authenticate(plain) is None
    assert await here.signed_in(stored.id, stored.prefix) is None  # dashboard sessions end
    clock.now += KEY_CACHE_SECONDS + 0.1
    assert await elsewhere.authenticate(plain) is None


async def test_every_key_is_listed_or_only_one_business_s(service: KeyService) -> None:
    # (Oldest first is the store's, tested with given times: these may share a millisecond.)
    await service.create("root", Role.ADMIN, None)
    await service.create("shop", Role.PRODUCER, "acme")
    await service.create("globex shop", Role.PRODUCER, "globex")
    assert {key.name for key in await service.list_keys()} == {"root", "shop", "globex shop"}
    assert [key.name for key in await service.list_keys("acme")] == ["shop"]


async def test_a_created_key_is_audited_naming_it_so_its_revocation_can_be_traced_back(
    service: KeyService, engine: AsyncEngine
) -> None:
    stored, _ = await service.create("root", Role.ADMIN, None, OPERATOR)
    await service.create("made by a test", Role.PRODUCER, "acme")  # no operator: no event
    [event] = await _audit(engine)
    assert (event["action"], event["actor_key_id"], event["business_id"]) == (
        "key.create",
        "cli",
        None,
    )
    assert event["filter"] == {
        "keyId": stored.id,
        "prefix": stored.prefix,
        "name": "root",
        "role": "admin",
    }
