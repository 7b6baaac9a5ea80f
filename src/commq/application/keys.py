"""API keys: random, shown once, stored as a hash, found by prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from commq.application.ports import KeyStore, StoredKey
from commq.domain.audit import AuditEntry, Principal
from commq.domain.permissions import Role

_SCHEME = "cq"


def hash_secret(key: str) -> str:
    """SHA-256 is enough: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode()).hexdigest()


def split_key(key: str) -> str | None:
    """The lookup prefix of a well-formed key, or None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != _SCHEME or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


class KeyService:
    """Creates keys and turns a presented key into a Principal."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    async def create(
        self,
        name: str,
        role: Role,
        business_id: str | None,
        actor: Principal | None = None,
    ) -> tuple[StoredKey, str]:
        """Store a new key and return it with its plain text, which is never stored."""
        prefix = secrets.token_hex(6)
        plain = f"{_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
        stored = StoredKey(
            id=str(uuid.uuid4()),
            prefix=prefix,
            secret_hash=hash_secret(plain),
            name=name,
            role=role,
            business_id=business_id,
        )
        audit = None
        if actor is not None:
            audit = AuditEntry("key.create", actor, business_id)
        await self._keys.create_key(stored, audit)
        return stored, plain

    async def any_exist(self) -> bool:
        """Whether any key exists yet (false on a first start)."""
        return await self._keys.count_keys() > 0

    async def authenticate(self, presented: str) -> Principal | None:
        """The key's principal, or None for anything unknown or malformed."""
        prefix = split_key(presented)
        if prefix is None:
            return None
        stored = await self._keys.find_key(prefix)
        if stored is None:
            return None
        # Constant-time, so response timing does not leak how much of a hash matched.
        if not hmac.compare_digest(stored.secret_hash, hash_secret(presented)):
            return None
        return Principal(stored.id, stored.name, stored.role, stored.business_id)

    async def signed_in(self, key_id: str, prefix: str) -> Principal | None:
        """The principal of a key that signed in earlier (dashboard session), or None.

        Looked up again on every request, so a key that is gone, or replaced
        under the same prefix, ends its sessions at once.
        """
        stored = await self._keys.find_key(prefix)
        if stored is None or stored.id != key_id:
            return None
        return Principal(stored.id, stored.name, stored.role, stored.business_id)
