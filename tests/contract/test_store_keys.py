"""The API key store, on every backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlKeyStore
from commq.adapters.store.tables import audit_events
from commq.application.ports import StoredKey
from commq.domain.errors import LastAdminKeyError
from commq.domain.permissions import Role

from .support import audit, count_rows


def _key(prefix: str, **fields: object) -> StoredKey:
    values: dict[str, object] = {
        "id": f"id-{prefix}",
        "prefix": prefix,
        "secret_hash": f"hash-{prefix}",
        "name": "ci",
        "role": Role.PRODUCER,
        "business_id": "acme",
    }
    return StoredKey(**{**values, **fields})  # type: ignore[arg-type]


async def test_a_created_key_is_found_by_its_prefix(key_store: SqlKeyStore) -> None:
    assert await key_store.count_keys() == 0
    await key_store.create_key(_key("cq_abc"), None)
    found = await key_store.find_key("cq_abc")
    assert found is not None
    assert (found.id, found.secret_hash, found.role, found.business_id) == (
        "id-cq_abc",
        "hash-cq_abc",
        Role.PRODUCER,
        "acme",
    )
    assert found.created_at is not None and found.created_at.tzinfo is not None
    assert await key_store.find_key("cq_other") is None
    assert await key_store.count_keys() == 1


async def test_a_platform_key_keeps_its_given_time(key_store: SqlKeyStore) -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    await key_store.create_key(_key("cq_p", business_id=None, role=Role.ADMIN, created_at=at), None)
    found = await key_store.find_key("cq_p")
    assert found is not None
    assert (found.business_id, found.role, found.created_at) == (None, Role.ADMIN, at)


async def test_an_operator_made_key_is_audited_with_it(
    key_store: SqlKeyStore, store_engine: AsyncEngine
) -> None:
    await key_store.create_key(_key("cq_a"), audit("key.create"))
    assert await count_rows(store_engine, audit_events, action="key.create") == 1


async def test_a_prefix_is_unique_and_a_refused_key_writes_no_audit(
    key_store: SqlKeyStore, store_engine: AsyncEngine
) -> None:
    await key_store.create_key(_key("cq_dup"), None)
    with pytest.raises(IntegrityError):
        await key_store.create_key(_key("cq_dup", id="another"), audit("key.create"))
    assert await key_store.count_keys() == 1
    assert await count_rows(store_engine, audit_events) == 0


async def test_keys_are_listed_oldest_first_and_narrowed_to_one_business(
    key_store: SqlKeyStore,
) -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    await key_store.create_key(_key("cq_new", created_at=at.replace(day=3)), None)
    await key_store.create_key(_key("cq_old", created_at=at, business_id=None), None)
    await key_store.create_key(_key("cq_mid", created_at=at.replace(day=2), business_id="x"), None)
    every = await key_store.list_keys(None)
    assert [key.prefix for key in every] == ["cq_old", "cq_mid", "cq_new"]
    assert [key.prefix for key in await key_store.list_keys("acme")] == ["cq_new"]
    assert await key_store.list_keys("globex") == []


async def test_a_key_is_found_by_its_id(key_store: SqlKeyStore) -> None:
    await key_store.create_key(_key("cq_abc"), None)
    found = await key_store.find_key_by_id("id-cq_abc")
    assert found is not None and found.prefix == "cq_abc"
    assert await key_store.find_key_by_id("cq_abc") is None  # a prefix is not an id


async def test_a_deleted_key_is_gone_and_audited_in_the_same_transaction(
    key_store: SqlKeyStore, store_engine: AsyncEngine
) -> None:
    await key_store.create_key(_key("cq_a"), None)
    assert await key_store.delete_key("id-cq_a", audit("key.revoke"), keep_last_admin=True)
    assert await key_store.find_key("cq_a") is None
    assert await count_rows(store_engine, audit_events, action="key.revoke") == 1
    # Unknown: nothing deleted, nothing audited.
    assert not await key_store.delete_key("id-cq_a", audit("key.revoke"), keep_last_admin=True)
    assert await count_rows(store_engine, audit_events, action="key.revoke") == 1


def _platform_admin(prefix: str) -> StoredKey:
    return _key(prefix, role=Role.ADMIN, business_id=None)


async def test_the_last_admin_platform_key_is_kept_unless_forced(
    key_store: SqlKeyStore, store_engine: AsyncEngine
) -> None:
    await key_store.create_key(_platform_admin("cq_root"), None)
    # A business's admin administers one business only: it does not count.
    await key_store.create_key(_key("cq_acme", role=Role.ADMIN), None)
    with pytest.raises(LastAdminKeyError):
        await key_store.delete_key("id-cq_root", audit("key.revoke"), keep_last_admin=True)
    assert await key_store.find_key("cq_root") is not None
    assert await count_rows(store_engine, audit_events) == 0
    # Any other key goes, the business admin included.
    assert await key_store.delete_key("id-cq_acme", audit("key.revoke"), keep_last_admin=True)
    assert await key_store.delete_key("id-cq_root", audit("key.revoke"), keep_last_admin=False)
    assert await key_store.count_keys() == 0


async def test_an_admin_platform_key_goes_while_another_is_left(key_store: SqlKeyStore) -> None:
    await key_store.create_key(_platform_admin("cq_one"), None)
    await key_store.create_key(_platform_admin("cq_two"), None)
    assert await key_store.delete_key("id-cq_one", audit("key.revoke"), keep_last_admin=True)
    with pytest.raises(LastAdminKeyError):
        await key_store.delete_key("id-cq_two", audit("key.revoke"), keep_last_admin=True)


async def test_two_revokes_at_once_cannot_remove_the_last_two_admin_platform_keys(
    key_store: SqlKeyStore,
) -> None:
    for round_ in range(20):  # a race: one round alone would often miss it
        pair = [f"cq_{round_}a", f"cq_{round_}b"]
        for prefix in pair:
            await key_store.create_key(_platform_admin(prefix), None)
        outcomes = await asyncio.gather(
            *(
                key_store.delete_key(f"id-{p}", audit("key.revoke"), keep_last_admin=True)
                for p in pair
            ),
            return_exceptions=True,
        )
        assert sorted(map(repr, outcomes)) == sorted([repr(True), repr(LastAdminKeyError())])
        [left] = await key_store.list_keys(None)
        await key_store.delete_key(left.id, audit("key.revoke"), keep_last_admin=False)
