"""The KeyStore over SQLite or PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.engine import Transactions
from commq.adapters.store.rows import audit_insert
from commq.adapters.store.tables import api_keys, db_now
from commq.application.ports import StoredKey
from commq.domain.audit import AuditEntry
from commq.domain.permissions import Role


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
        query = api_keys.select().where(api_keys.c.prefix == prefix)
        async with self._tx.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return StoredKey(
            id=row["id"],
            prefix=row["prefix"],
            secret_hash=row["secret_hash"],
            name=row["name"],
            role=Role(row["role"]),
            business_id=row["business_id"],
            created_at=row["created_at"],
        )

    async def count_keys(self) -> int:
        async with self._tx.read() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()
            )
