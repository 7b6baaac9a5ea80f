"""The API key store, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlKeyStore
from commq.adapters.store.tables import audit_events
from commq.application.ports import StoredKey
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
