"""API keys: random, shown once, stored as a hash, found by prefix."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from commq.application.ports import KeyStore, StoredKey
from commq.domain.audit import AuditEntry, Principal
from commq.domain.errors import KeyNotFoundError
from commq.domain.permissions import Role

_SCHEME = "cq"

#: Seconds a verified API key is trusted without reading the store again: a removed
#: key keeps working for at most this long (dashboard sessions end at once).
KEY_CACHE_SECONDS = 5.0

# Only keys that verified are remembered, so this bounds memory whatever callers send.
_KEY_CACHE_SIZE = 10_000

# What secrets.token_hex(6) makes; an id is a UUID, so the two never look alike.
_PREFIX = re.compile(r"[0-9a-f]{12}")


def hash_secret(key: str) -> str:
    """SHA-256 is enough: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode()).hexdigest()


def split_key(key: str) -> str | None:
    """The lookup prefix of a well-formed key, or None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != _SCHEME or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


@dataclass(frozen=True, slots=True)
class _Verified:
    secret_hash: str
    principal: Principal
    until: float


class KeyService:
    """Creates, lists and revokes keys, and turns a presented key into a Principal.

    A key that verified is remembered for ``cache_seconds`` (by prefix, with its
    hash, so another secret under that prefix is still checked against the store):
    most requests then need no read of the store at all.
    """

    def __init__(
        self,
        keys: KeyStore,
        *,
        cache_seconds: float = KEY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._verified: dict[str, _Verified] = {}

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
            audit = AuditEntry("key.create", actor, business_id, filter=_key_description(stored))
        await self._keys.create_key(stored, audit)
        return stored, plain

    async def list_keys(self, business_id: str | None = None) -> list[StoredKey]:
        """Every key, oldest first, or only the keys of ``business_id``."""
        return await self._keys.list_keys(business_id)

    async def revoke(self, reference: str, actor: Principal, *, force: bool = False) -> StoredKey:
        """Delete the key whose id or lookup prefix is ``reference``, audited as ``key.revoke``.

        Raises KeyNotFoundError when there is none, and LastAdminKeyError for the
        only admin platform key unless ``force``: without one, nobody could act on
        every business until someone with the database made a new key. Other
        processes that remember the key stop accepting it within ``cache_seconds``.
        """
        stored = await self._find(reference)
        if stored is None:
            raise KeyNotFoundError(f"no API key has the id or prefix {reference!r}")
        audit = AuditEntry("key.revoke", actor, stored.business_id, filter=_key_description(stored))
        if not await self._keys.delete_key(stored.id, audit, keep_last_admin=not force):
            raise KeyNotFoundError(f"no API key has the id or prefix {reference!r}")
        self._verified.pop(stored.prefix, None)  # this process stops at once
        return stored

    async def _find(self, reference: str) -> StoredKey | None:
        if _PREFIX.fullmatch(reference):
            return await self._keys.find_key(reference)
        return await self._keys.find_key_by_id(reference)

    async def any_exist(self) -> bool:
        """Whether any key exists yet (false on a first start)."""
        return await self._keys.count_keys() > 0

    async def authenticate(self, presented: str) -> Principal | None:
        """The key's principal, or None for anything unknown or malformed.

        A key verified less than ``cache_seconds`` ago is not read again.
        """
        prefix = split_key(presented)
        if prefix is None:
            return None
        presented_hash = hash_secret(presented)
        now = self._clock()
        known = self._verified.get(prefix)
        # Constant-time, so response timing does not leak how much of a hash matched.
        if (
            known is not None
            and now < known.until
            and hmac.compare_digest(known.secret_hash, presented_hash)
        ):
            return known.principal
        stored = await self._keys.find_key(prefix)
        if stored is None or not hmac.compare_digest(stored.secret_hash, presented_hash):
            return None
        principal = Principal(stored.id, stored.name, stored.role, stored.business_id)
        self._remember(prefix, _Verified(stored.secret_hash, principal, now + self._cache_seconds))
        return principal

    def _remember(self, prefix: str, verified: _Verified) -> None:
        if self._cache_seconds <= 0:
            return
        self._verified.pop(prefix, None)
        if len(self._verified) >= _KEY_CACHE_SIZE:
            # Oldest first: dicts keep insertion order and every entry lives equally long.
            del self._verified[next(iter(self._verified))]
        self._verified[prefix] = verified

    async def signed_in(self, key_id: str, prefix: str) -> Principal | None:
        """The principal of a key that signed in earlier (dashboard session), or None.

        Looked up again on every request, so a key that is gone, or replaced
        under the same prefix, ends its sessions at once.
        """
        stored = await self._keys.find_key(prefix)
        if stored is None or stored.id != key_id:
            return None
        return Principal(stored.id, stored.name, stored.role, stored.business_id)


def _key_description(key: StoredKey) -> dict[str, str]:
    """Which key an audit event is about (its businessId is the event's own).

    Audit events have no column for a key, and ``actorKeyId`` names who acted,
    so the key goes where suppression.delete puts its recipient: ``filter``.
    """
    return {"keyId": key.id, "prefix": key.prefix, "name": key.name, "role": key.role.value}
