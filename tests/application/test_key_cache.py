"""KeyService remembers a verified key for a few seconds, and no longer."""

from __future__ import annotations

import pytest

from commq.application import keys as keys_module
from commq.application.keys import KEY_CACHE_SECONDS, KeyService, split_key
from commq.application.ports import StoredKey
from commq.domain.audit import AuditEntry, Principal
from commq.domain.permissions import Role
from fakes.clocks import ManualClock


class MemoryKeys:
    """A KeyStore in a dict that counts its lookups."""

    def __init__(self) -> None:
        self.keys: dict[str, StoredKey] = {}
        self.lookups = 0

    async def create_key(self, key: StoredKey, audit: AuditEntry | None) -> None:
        self.keys[key.prefix] = key

    async def find_key(self, prefix: str) -> StoredKey | None:
        self.lookups += 1
        return self.keys.get(prefix)

    async def count_keys(self) -> int:
        return len(self.keys)


@pytest.fixture
def store() -> MemoryKeys:
    return MemoryKeys()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(store: MemoryKeys, clock: ManualClock) -> KeyService:
    return KeyService(store, clock=clock)


def _other_secret(key: str) -> str:
    prefix = split_key(key)
    return f"cq_{prefix}_{'x' * 43}"


async def test_a_verified_key_is_not_read_again_within_the_bound(
    service: KeyService, store: MemoryKeys, clock: ManualClock
) -> None:
    stored, plain = await service.create("shop", Role.PRODUCER, "acme")
    expected = Principal(stored.id, "shop", Role.PRODUCER, "acme")
    assert await service.authenticate(plain) == expected
    clock.now += KEY_CACHE_SECONDS - 0.1
    assert await service.authenticate(plain) == expected
    assert store.lookups == 1
    clock.now += 0.2
    assert await service.authenticate(plain) == expected
    assert store.lookups == 2


async def test_a_removed_key_stops_working_once_the_bound_has_passed(
    service: KeyService, store: MemoryKeys, clock: ManualClock
) -> None:
    stored, plain = await service.create("shop", Role.PRODUCER, "acme")
    assert await service.authenticate(plain) is not None
    del store.keys[stored.prefix]
    clock.now += KEY_CACHE_SECONDS - 0.1
    assert await service.authenticate(plain) is not None  # at most the bound
    clock.now += 0.2
    assert await service.authenticate(plain) is None
    assert await service.authenticate(plain) is None


async def test_another_secret_under_a_remembered_prefix_is_refused(
    service: KeyService, store: MemoryKeys
) -> None:
    _, plain = await service.create("shop", Role.PRODUCER, "acme")
    assert await service.authenticate(plain) is not None
    assert await service.authenticate(_other_secret(plain)) is None
    assert store.lookups == 2  # a mismatch is checked against the store, never trusted
    assert await service.authenticate(plain) is not None
    assert store.lookups == 2


async def test_a_key_replaced_under_its_prefix_takes_over_at_once(
    service: KeyService, store: MemoryKeys
) -> None:
    stored, plain = await service.create("shop", Role.PRODUCER, "acme")
    assert await service.authenticate(plain) is not None
    replacement = _other_secret(plain)
    store.keys[stored.prefix] = StoredKey(
        "id-2", stored.prefix, keys_module.hash_secret(replacement), "new", Role.ADMIN, None
    )
    assert await service.authenticate(replacement) == Principal("id-2", "new", Role.ADMIN, None)
    assert await service.authenticate(plain) is None


async def test_malformed_and_unknown_keys_are_refused_and_not_remembered(
    service: KeyService, store: MemoryKeys
) -> None:
    assert await service.authenticate("not-a-key") is None
    assert store.lookups == 0
    assert await service.authenticate(f"cq_{'0' * 12}_{'y' * 43}") is None
    assert await service.authenticate(f"cq_{'0' * 12}_{'y' * 43}") is None
    assert store.lookups == 2


async def test_a_zero_bound_reads_the_store_every_time(
    store: MemoryKeys, clock: ManualClock
) -> None:
    service = KeyService(store, cache_seconds=0, clock=clock)
    _, plain = await service.create("shop", Role.PRODUCER, "acme")
    for _ in range(3):
        assert await service.authenticate(plain) is not None
    assert store.lookups == 3


async def test_the_cache_holds_a_bounded_number_of_keys(
    service: KeyService, store: MemoryKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_module, "_KEY_CACHE_SIZE", 2)
    made = [(await service.create(f"k{i}", Role.PRODUCER, "acme"))[1] for i in range(3)]
    for plain in made:
        assert await service.authenticate(plain) is not None
    assert store.lookups == 3
    # The oldest was dropped for the third; the two latest are still remembered.
    for plain in made[1:]:
        assert await service.authenticate(plain) is not None
    assert store.lookups == 3
    assert await service.authenticate(made[0]) is not None
    assert store.lookups == 4
