"""The KeyStore over SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commq.adapters.store.engine import Transactions
from commq.adapters.store.rows import audit_insert
from commq.adapters.store.tables import api_keys, db_now
from commq.application.ports import StoredKey
from commq.domain.audit import AuditEntry
from commq.domain.errors import LastAdminKeyError
from commq.domain.permissions import Role

_k = api_keys.c


class SqlKeyStore:
    """API keys (hashes only), found by their lookup prefix."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)

    async def create_key(self, key: StoredKey, audit: AuditEntry | None) -> None:
        insert = api_keys.insert().values(
            id=key.id,
            prefix=key.prefix,
            secret_hash=key.secret_hash,
            name=key.name,
            role=key.role.value,
            business_id=key.business_id,
            created_at=db_now() if key.created_at is None else key.created_at,
        )
        async with self._tx.write() as conn:
            await conn.execute(insert)
            if audit is not None:
                await conn.execute(audit_insert(audit, audit.business_id, audit.job_id))

    async def find_key(self, prefix: str) -> StoredKey | None:
        return await self._find_one(_k.prefix == prefix)

    async def find_key_by_id(self, key_id: str) -> StoredKey | None:
        return await self._find_one(_k.id == key_id)

    async def _find_one(self, where: Any) -> StoredKey | None:
        async with self._tx.read() as conn:
            row = (await conn.execute(api_keys.select().where(where))).mappings().first()
        return None if row is None else _key_from_row(row)

    async def count_keys(self) -> int:
        async with self._tx.read() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()
            )

    async def list_keys(self, business_id: str | None) -> list[StoredKey]:
        # Operators keep tens of keys, not millions: one unpaged list is what they want.
        query = api_keys.select().order_by(_k.created_at, _k.id)
        if business_id is not None:
            query = query.where(_k.business_id == business_id)
        async with self._tx.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_key_from_row(row) for row in rows]

    async def delete_key(self, key_id: str, audit: AuditEntry, *, keep_last_admin: bool) -> bool:
        async with self._tx.write() as conn:
            if keep_last_admin and await _platform_admins(conn) == {key_id}:
                raise LastAdminKeyError()
            deleted = await conn.execute(api_keys.delete().where(_k.id == key_id))
            if deleted.rowcount == 0:
                return False
            await conn.execute(audit_insert(audit, audit.business_id, audit.job_id))
        return True


async def _platform_admins(conn: AsyncConnection) -> set[str]:
    """The ids of the admin platform keys, locked until the transaction ends.

    On PostgreSQL a second revoke waits here for the first and then sees its
    delete, so two revokes at once cannot remove the last two admin keys
    (SQLite's BEGIN IMMEDIATE already runs one writer at a time).
    """
    query = (
        select(_k.id).where(_k.role == Role.ADMIN.value, _k.business_id.is_(None)).with_for_update()
    )
    return set((await conn.execute(query)).scalars())


def _key_from_row(row: Mapping[str, Any]) -> StoredKey:
    return StoredKey(
        id=row["id"],
        prefix=row["prefix"],
        secret_hash=row["secret_hash"],
        name=row["name"],
        role=Role(row["role"]),
        business_id=row["business_id"],
        created_at=row["created_at"],
    )
