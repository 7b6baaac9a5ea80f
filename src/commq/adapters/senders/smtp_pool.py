"""SMTP connections kept open between sends, so a batch pays one handshake, not one each."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiosmtplib


@dataclass(slots=True)
class PooledConnection:
    """One SMTP client and how much it has carried."""

    smtp: aiosmtplib.SMTP
    messages: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class SmtpPool:
    """At most ``size`` connections; an idle one is reused only while it is fresh and answers.

    A connection idle for longer than ``max_idle`` seconds is closed instead of
    reused (servers drop idle clients, often silently), and each reuse starts
    with RSET, which both clears any state a refused message left and proves
    the server still listens; if it fails, a new connection is opened: nothing
    of the message had been sent. After ``max_messages`` a connection is
    closed, as many servers cap messages per connection.
    """

    def __init__(
        self,
        factory: Callable[[], aiosmtplib.SMTP],
        *,
        size: int,
        max_idle: float,
        max_messages: int,
        timeout: float,
    ) -> None:
        if size < 1:
            raise ValueError("an SMTP pool needs at least one connection")
        self._factory = factory
        self._slots = asyncio.Semaphore(size)
        self._idle: list[PooledConnection] = []
        self._max_idle = max_idle
        self._max_messages = max_messages
        self._timeout = timeout
        self._closed = False

    async def acquire(self) -> PooledConnection:
        """A live idle connection (after RSET), or a new client not yet connected."""
        await self._slots.acquire()
        try:
            while self._idle:
                pooled = self._idle.pop()  # the most recently used is the likeliest alive
                if await self._usable(pooled):
                    return pooled
        except BaseException:
            self._slots.release()
            raise
        return PooledConnection(self._factory())

    async def release(self, pooled: PooledConnection, reusable: bool) -> None:
        """Give a connection back: kept when ``reusable`` and under its limits, else closed."""
        self._slots.release()
        pooled.messages += 1
        keep = reusable and not self._closed and pooled.messages < self._max_messages
        if keep and pooled.smtp.is_connected:
            pooled.idle_since = time.monotonic()
            self._idle.append(pooled)
        elif reusable:
            await self._quit(pooled)
        else:
            # After an error the session state is unknown: no QUIT, just close.
            pooled.smtp.close()

    async def close(self) -> None:
        """QUIT every idle connection; connections in use are closed when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for pooled in idle:
            await self._quit(pooled)

    async def _usable(self, pooled: PooledConnection) -> bool:
        if time.monotonic() - pooled.idle_since > self._max_idle:
            await self._quit(pooled)
            return False
        if not pooled.smtp.is_connected:
            pooled.smtp.close()
            return False
        try:
            # aiosmtplib raises for any reply but 250.
            await pooled.smtp.rset(timeout=min(self._timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pooled.smtp.close()
            return False
        return True

    async def _quit(self, pooled: PooledConnection) -> None:
        if pooled.smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await pooled.smtp.quit(timeout=min(self._timeout, 5.0))
        pooled.smtp.close()
