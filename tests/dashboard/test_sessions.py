"""The session signer on its own: signatures, expiry, CSRF tokens, same-origin checks."""

from __future__ import annotations

from pathlib import Path

from commq.domain.audit import Principal
from commq.domain.permissions import Role
from commq.entrypoints.dashboard.sessions import (
    LIFETIME_SECONDS,
    Sessions,
    cross_site,
    load_secret,
)

WHO = Principal("key-1", "ops", Role.SUPPORT, "acme")


async def _resolve(key_id: str, prefix: str) -> Principal | None:
    return WHO if (key_id, prefix) == ("key-1", "abc") else None


def _signer(now: list[float], secret: bytes = b"s" * 32) -> Sessions:
    return Sessions(lambda: secret, _resolve, clock=lambda: now[0])


def test_a_session_reads_back_until_it_expires() -> None:
    now = [1_000_000.0]
    signer = _signer(now)
    value, session = signer.issue(WHO, "abc")
    assert signer.read(value) == session
    now[0] += LIFETIME_SECONDS - 1
    assert signer.read(value) == session
    now[0] += 2
    assert signer.read(value) is None


def test_another_secret_does_not_accept_the_cookie() -> None:
    value, _ = _signer([0.0]).issue(WHO, "abc")
    assert _signer([0.0], b"t" * 32).read(value) is None


def test_the_csrf_token_is_bound_to_its_session() -> None:
    signer = _signer([0.0])
    _, first = signer.issue(WHO, "abc")
    _, second = signer.issue(WHO, "abc")
    assert signer.csrf_valid(first, signer.csrf_token(first))
    assert not signer.csrf_valid(first, signer.csrf_token(second))
    assert not signer.csrf_valid(first, None)
    assert not signer.csrf_valid(first, "")


async def test_the_principal_is_read_again_and_must_match_the_cookie() -> None:
    signer = _signer([0.0])
    _, session = signer.issue(WHO, "abc")
    assert await signer.principal_of(session) == WHO
    promoted = Principal("key-1", "ops", Role.ADMIN, "acme")
    _, stale = signer.issue(promoted, "abc")  # the cookie says admin, the key says support
    assert await signer.principal_of(stale) is None
    _, gone = signer.issue(WHO, "zzz")
    assert await signer.principal_of(gone) is None


def test_cross_site_requests_are_recognised() -> None:
    assert not cross_site({"host": "commq.test"})
    assert not cross_site({"host": "commq.test", "origin": "http://commq.test"})
    assert not cross_site({"host": "commq.test", "origin": "https://commq.test"})
    assert not cross_site({"host": "commq.test", "sec-fetch-site": "same-origin"})
    assert cross_site({"host": "commq.test", "origin": "https://evil.example"})
    assert cross_site({"host": "commq.test", "origin": "null"})
    assert cross_site({"host": "commq.test", "sec-fetch-site": "same-site"})
    assert cross_site({"host": "commq.test", "sec-fetch-site": "cross-site"})


def test_a_missing_secret_is_made_once_beside_the_database_and_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    first = load_secret(None, url)
    assert len(first) >= 32
    assert load_secret(None, url) == first
    assert (tmp_path / "q.db.session-secret").stat().st_mode & 0o777 == 0o600
    assert load_secret("configured", url) == b"configured"
