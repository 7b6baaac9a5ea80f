"""An httpx transport whose every connection goes to an address the SSRF guard has just checked.

The guard runs inside the transport, at the moment a connection is opened:
the host is resolved once, every address is checked, and the socket is opened
to one of those addresses, never to a name resolved again. The URL keeps its
host name, so the Host header, TLS SNI and certificate verification are those
of the name (https cannot be rebound, and plain http gets the same pinning).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from commq.adapters.senders.hostguard import HostGuard, RefusedAddressError


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses ``guard`` allows, trying them in order."""

    def __init__(self, guard: HostGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve and check ``host`` (RefusedAddressError), then connect to a checked address."""
        try:
            addresses = await self._guard.connectable(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"webhook host {host} did not resolve: {exc}") from exc
        for address in addresses[:-1]:
            try:
                return await self._connect(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # nothing was sent, so the host's next address is safe to try
        return await self._connect(str(addresses[-1]), port, timeout, local_address, socket_options)

    async def _connect(
        self,
        address: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: a webhook goes over TCP to a checked address."""
        raise RefusedAddressError("webhooks are never sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool on a ``GuardedNetworkBackend``.

    Proxies are never used (they would connect on our behalf, past the guard).
    """

    def __init__(self, guard: HostGuard, ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or _default_ssl_context()
        super().__init__(verify=context, trust_env=False)
        # httpx 0.28 (pinned) has no parameter for a network backend, so the pool
        # it built (no connection opened yet) is replaced by one on the guarded
        # backend; tests/adapters/test_webhook_ssrf.py fails if that stops working.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedNetworkBackend(guard),
        )


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds: once per process is enough.
    return httpx.create_ssl_context(trust_env=False)
