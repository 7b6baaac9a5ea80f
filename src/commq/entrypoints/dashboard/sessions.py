"""Signed dashboard sessions, and the CSRF and same-origin rules that guard them.

A session is a cookie holding the signed-in key's id, lookup prefix, role and
business, a random nonce and an expiry, signed with HMAC-SHA256. Nothing is
stored on the server: every request re-reads the key (so a deleted or changed
key ends its sessions at once), and the CSRF token is an HMAC of the session's
nonce, so it needs no storage either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

from commq.domain.audit import Principal

log = logging.getLogger("commq.dashboard")

COOKIE = "commq_session"
LOGIN_COOKIE = "commq_login"
CSRF_HEADER = "x-csrf-token"
#: A session ends this long after sign-in, whatever happens in between.
LIFETIME_SECONDS = 8 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Finds the principal of a key by (key id, lookup prefix); None once the key is gone.
Resolve = Callable[[str, str], Awaitable[Principal | None]]


@dataclass(frozen=True, slots=True)
class Session:
    """What the session cookie carries (signed, not encrypted: nothing in it is secret)."""

    key_id: str
    prefix: str
    role: str
    business_id: str | None
    nonce: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues and checks session cookies and their CSRF tokens."""

    def __init__(
        self,
        secret: Callable[[], bytes],
        resolve: Resolve,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret_source = secret
        self._secret: bytes | None = None
        self._resolve = resolve
        self._clock = clock

    def _key(self) -> bytes:
        # Read lazily: building the app must not touch the file system.
        if self._secret is None:
            self._secret = self._secret_source()
        return self._secret

    def _mac(self, purpose: str, data: str) -> str:
        message = f"{purpose}|{data}".encode()
        return _b64(hmac.new(self._key(), message, hashlib.sha256).digest())

    def issue(self, principal: Principal, prefix: str) -> tuple[str, Session]:
        """A new session for ``principal`` and its signed cookie value."""
        session = Session(
            key_id=principal.key_id,
            prefix=prefix,
            role=principal.role.value,
            business_id=principal.business_id,
            nonce=secrets.token_urlsafe(16),
            expires_at=int(self._clock()) + LIFETIME_SECONDS,
        )
        body = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
        return f"{body}.{self._mac('session', body)}", session

    def read(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None if absent, forged, malformed or expired."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            session = Session(**json.loads(_unb64(body)))
        except (ValueError, TypeError):
            return None
        return session if session.expires_at > self._clock() else None

    def csrf_token(self, session: Session) -> str:
        """The CSRF token bound to this session."""
        return self._mac("csrf", session.nonce)

    def csrf_valid(self, session: Session, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token."""
        return bool(token) and hmac.compare_digest(token or "", self.csrf_token(session))

    async def principal_of(self, session: Session | None) -> Principal | None:
        """The session's principal, re-read from the key store (None once the key changed)."""
        if session is None:
            return None
        principal = await self._resolve(session.key_id, session.prefix)
        if principal is None:
            return None
        if principal.role.value != session.role or principal.business_id != session.business_id:
            return None
        return principal

    # The two methods the API's guard calls (see guard.CookieAuth).

    async def principal(self, headers: Mapping[str, str]) -> Principal | None:
        """The principal behind the session cookie in ``headers``, if any."""
        return await self.principal_of(self.read(cookie(headers, COOKIE)))

    def refusal(self, method: str, headers: Mapping[str, str]) -> str | None:
        """Why a cookie-authenticated request must be refused (403), or None.

        State changes need this session's CSRF token in ``X-CSRF-Token`` and must
        come from the dashboard's own origin; reads only need the latter when the
        browser says they are cross-site (a WebSocket handshake, say).
        """
        if cross_site(headers):
            return "Cross-site requests are refused"
        if method in SAFE_METHODS:
            return None
        session = self.read(cookie(headers, COOKIE))
        if session is None or not self.csrf_valid(session, headers.get(CSRF_HEADER)):
            return "A valid X-CSRF-Token header is required with a session cookie"
        return None


def cookie(headers: Mapping[str, str], name: str) -> str | None:
    """One cookie's value from a request's headers."""
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is the same as none
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def cross_site(headers: Mapping[str, str]) -> bool:
    """Whether the browser says this request comes from another site or origin.

    ``Sec-Fetch-Site`` is the browser's own verdict; ``Origin`` is compared by host
    and port with ``Host`` (not by scheme, so TLS ended at a proxy still matches).
    Requests that carry neither (curl, tests) are not browsers' cross-site requests.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != headers.get("host", "")


def header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI headers as a dict of lower-case names (the last value wins)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


def load_secret(configured: str | None, database_url: str) -> bytes:
    """The signing secret: COMMQ_SESSION_SECRET, else a file made on first start.

    The file sits beside a SQLite database, or in the working directory for
    PostgreSQL; processes behind one load balancer must share one secret, so
    scaled deployments set COMMQ_SESSION_SECRET instead.
    """
    if configured:
        return configured.encode()
    path = _secret_path(database_url)
    if not path.exists():
        # Written aside and linked into place, so a racing process never reads half a file.
        draft = path.with_name(f"{path.name}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
            log.warning("COMMQ_SESSION_SECRET is not set: sessions are signed with %s", path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes().strip()


def _secret_path(database_url: str) -> Path:
    if database_url.startswith("sqlite:///"):
        database = Path(database_url.removeprefix("sqlite:///").partition("?")[0])
        return database.with_name(database.name + ".session-secret")
    return Path("commq.session-secret")
