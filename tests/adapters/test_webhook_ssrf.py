"""The SSRF guard at connect time, TLS to a pinned address, and the total time limit."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import trustme

from commq.adapters.senders import HostGuard, WebhookSender
from commq.adapters.senders.hostguard import IPAddress
from commq.domain.jobs import Channel, Job
from commq.domain.outcomes import SendOutcome

if TYPE_CHECKING:
    from conftest import HttpPeer

JobFactory = Callable[..., Job]


def webhook_job(make_job: JobFactory, url: str) -> Job:
    return make_job(Channel.WEBHOOK, recipient=url, payload={"body": {"n": 1}})


class ScriptedDns(HostGuard):
    """A guard whose "DNS" gives the next scripted answer on each lookup."""

    def __init__(self, allowed: str, *answers: list[str]) -> None:
        super().__init__(allowed)
        self.answers = [[ipaddress.ip_address(a) for a in answer] for answer in answers]
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


# ---------------------------------------------------------------- the guard at connect time


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_name_resolving_to_a_refused_address_is_never_connected(
    make_job: JobFactory, http_server: HttpPeer, scheme: str
) -> None:
    # Only 127.0.0.2 is allowed; localhost resolves to 127.0.0.1 (and ::1).
    sender = WebhookSender(HostGuard("127.0.0.2"), timeout=2.0)
    url = f"{scheme}://localhost:{http_server.port}/ok"

    result = await sender.send(webhook_job(make_job, url))
    await sender.close()

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error is not None
    assert "is a loopback address" in result.error
    assert http_server.requests == []


async def test_a_rebinding_answer_on_a_later_connection_is_refused(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    # The first lookup answers an allowed address, the next one an internal address.
    guard = ScriptedDns("127.0.0.1", ["127.0.0.1"], ["10.0.0.7"])
    sender = WebhookSender(guard, timeout=2.0)
    url = f"http://hooks.test:{http_server.port}/ok"

    first = await sender.send(webhook_job(make_job, url))
    second = await sender.send(webhook_job(make_job, url))  # the test server closed the first
    await sender.close()

    assert first.outcome is SendOutcome.OK
    assert second.outcome is SendOutcome.PERMANENT
    assert second.error is not None
    assert "hooks.test (10.0.0.7) is a private address" in second.error
    assert guard.lookups == ["hooks.test", "hooks.test"]
    assert len(http_server.requests) == 1


# ---------------------------------------------------------------- TLS to the checked address


@dataclass
class TlsPeer:
    port: int
    client_context: ssl.SSLContext
    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


class _TlsHandler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.peer.hosts.append(self.headers["Host"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(certificate_authority: trustme.CA) -> Iterator[TlsPeer]:
    """An HTTPS server on 127.0.0.1 whose certificate names only hooks.test."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("hooks.test").configure_cert(server_context)
    client_context = ssl.create_default_context()
    certificate_authority.configure_trust(client_context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TlsHandler)
    peer = TlsPeer(server.server_address[1], client_context)
    server.peer = peer  # type: ignore[attr-defined]

    def remember(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        peer.server_names.append(name)

    server_context.sni_callback = remember  # type: ignore[assignment]
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


async def test_https_goes_to_the_checked_address_with_the_names_sni_and_certificate(
    make_job: JobFactory, tls_server: TlsPeer
) -> None:
    # hooks.test exists only in the guard's "DNS": the socket went to the checked address,
    # while SNI, certificate verification and Host all used the name.
    guard = ScriptedDns("127.0.0.1", ["127.0.0.1"])
    sender = WebhookSender(guard, timeout=2.0, ssl_context=tls_server.client_context)

    result = await sender.send(webhook_job(make_job, f"https://hooks.test:{tls_server.port}/in"))
    await sender.close()

    assert result.outcome is SendOutcome.OK
    assert tls_server.server_names == ["hooks.test"]
    assert tls_server.hosts == [f"hooks.test:{tls_server.port}"]


async def test_pinning_does_not_loosen_certificate_checks(
    make_job: JobFactory, tls_server: TlsPeer
) -> None:
    guard = ScriptedDns("127.0.0.1", ["127.0.0.1"])
    sender = WebhookSender(guard, timeout=2.0, ssl_context=tls_server.client_context)

    url = f"https://elsewhere.test:{tls_server.port}/in"
    result = await sender.send(webhook_job(make_job, url))
    await sender.close()

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert tls_server.hosts == []


# ---------------------------------------------------------------- the total time limit


@pytest.fixture
async def dripping_server() -> AsyncIterator[Callable[..., Any]]:
    """Start servers that read a request, send ``head`` and then ``drip`` a byte per 50 ms."""
    servers: list[asyncio.Server] = []

    async def start(head: bytes, drip_: bytes) -> int:
        async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            try:
                for byte in drip_:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.05)
            except ConnectionError:
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(drip, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_headers_dripping_slower_than_the_timeout_are_cut_off(
    make_job: JobFactory, dripping_server: Callable[..., Any]
) -> None:
    headers = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    port = await dripping_server(b"", headers)
    sender = WebhookSender(HostGuard("127.0.0.1"), timeout=0.5)

    started = time.monotonic()
    result = await sender.send(webhook_job(make_job, f"http://127.0.0.1:{port}/"))
    elapsed = time.monotonic() - started
    await sender.close()

    assert elapsed < 5  # the drip would take 10 s or more; a busy machine needs room
    assert result.outcome is SendOutcome.AMBIGUOUS
    assert result.error is not None
    assert "timed out after the request was sent" in result.error


async def test_an_error_body_dripping_slower_than_the_timeout_is_cut_off(
    make_job: JobFactory, dripping_server: Callable[..., Any]
) -> None:
    head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100000\r\n\r\n"
    port = await dripping_server(head, b"slow" * 25000)
    sender = WebhookSender(HostGuard("127.0.0.1"), timeout=0.5)

    started = time.monotonic()
    result = await sender.send(webhook_job(make_job, f"http://127.0.0.1:{port}/"))
    elapsed = time.monotonic() - started
    await sender.close()

    # The status line came in time, so the answer is classified by it.
    assert elapsed < 5  # the drip would take 10 s or more; a busy machine needs room
    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error is not None
    assert result.error.startswith("HTTP 503: slow")
