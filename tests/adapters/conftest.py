"""Real peers on 127.0.0.1 for the sender tests.

An aiosmtpd server (``smtp_server``), a scriptable HTTP server (``http_server``),
and the provider fakes of ``tests/fakes`` (``fake_sendgrid``, ``fake_twilio``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpSession
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from commq.domain.jobs import Channel, Job, JobStatus, new_job_id
from fakes import FakeSendGrid, FakeTwilio
from serving import free_port

JobFactory = Callable[..., Job]

_DEFAULT_PAYLOADS: dict[Channel, dict[str, Any]] = {
    Channel.EMAIL: {"subject": "Hello", "text": "Hi there.\n"},
    Channel.SMS: {"body": "Your code is 123456"},
    Channel.WEBHOOK: {"body": {"event": "order.paid", "orderId": 42}},
}
_DEFAULT_RECIPIENTS = {
    Channel.EMAIL: "ada@example.com",
    Channel.SMS: "+15551234567",
    Channel.WEBHOOK: "https://hooks.example.com/in",
}


@pytest.fixture
def make_job() -> JobFactory:
    """Build a processing Job the way the store hands one to a sender."""

    def factory(
        channel: Channel = Channel.EMAIL,
        recipient: str | None = None,
        payload: dict[str, Any] | None = None,
        job_id: str | None = None,
        business_id: str = "biz-1",
    ) -> Job:
        now = datetime.now(UTC)
        return Job(
            id=job_id or new_job_id(),
            business_id=business_id,
            channel=channel,
            recipient=recipient or _DEFAULT_RECIPIENTS[channel],
            payload=dict(_DEFAULT_PAYLOADS[channel]) if payload is None else payload,
            status=JobStatus.PROCESSING,
            priority=0,
            attempts=1,
            max_attempts=3,
            run_at=now,
            created_at=now,
            updated_at=now,
        )

    return factory


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections."""
    return free_port()


# ---------------------------------------------------------------- SMTP


@dataclass
class SmtpHandler:
    """An aiosmtpd handler that records messages and answers as a test tells it to."""

    received: list[Envelope] = field(default_factory=list)
    mail_reply: str | None = None
    rcpt_reply: str | None = None
    data_reply: str | None = None
    #: Accept the content, then say nothing for this long (the client times out first).
    data_stall: float = 0.0
    #: Drop the connection instead of answering MAIL FROM / after the content.
    hang_up_at_mail: bool = False
    hang_up_after_data: bool = False
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: The client address of each MAIL FROM: distinct values are distinct connections.
    mail_peers: list[Any] = field(default_factory=list)
    rsets: int = 0
    #: Every session's server side, so a test can drop idle clients as servers do.
    servers: list[SmtpSession] = field(default_factory=list)

    async def handle_EHLO(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.servers.append(server)
        session.host_name = hostname
        return responses

    async def handle_RSET(self, server: SmtpSession, session: Session, envelope: Envelope) -> str:
        self.rsets += 1
        return "250 OK"

    def drop_connections(self) -> None:
        """Close every client connection, as a server does with idle clients."""
        for server in self.servers:
            if server.transport is not None:
                # The server runs its own event loop in another thread.
                server.loop.call_soon_threadsafe(server.transport.close)

    @property
    def connections(self) -> int:
        """How many connections carried a MAIL FROM."""
        return len(set(self.mail_peers))

    async def handle_MAIL(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.mail_peers.append(session.peer)
        if self.hang_up_at_mail and server.transport is not None:
            server.transport.close()
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SmtpSession, session: Session, envelope: Envelope) -> str:
        if self.data_stall:
            await asyncio.sleep(self.data_stall)
        if self.hang_up_after_data and server.transport is not None:
            server.transport.close()
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope)
        return "250 2.0.0 Ok: queued"

    def authenticate(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """Accept only alice with the password "p@ss:word"."""
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"alice" and auth_data.password == b"p@ss:word"
        # handled=False: let aiosmtpd answer the failure with its 535 reply.
        return AuthResult(success=ok, handled=False)


@dataclass
class SmtpPeer:
    """A running SMTP server and its handler."""

    handler: SmtpHandler
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@contextlib.contextmanager
def serve_smtp(handler: SmtpHandler, **options: Any) -> Iterator[SmtpPeer]:
    """Run an aiosmtpd server on 127.0.0.1 with ``handler`` and aiosmtpd's SMTP ``options``."""
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=handler.authenticate, **options
    )
    controller.start()
    try:
        yield SmtpPeer(handler, port)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpPeer]:
    """An aiosmtpd server on 127.0.0.1 that offers (but does not require) AUTH in plain text."""
    with serve_smtp(SmtpHandler(), auth_require_tls=False) as peer:
        yield peer


@pytest.fixture
def smtp_server_without_auth() -> Iterator[SmtpPeer]:
    """An aiosmtpd server that offers neither STARTTLS nor AUTH: a relay taking mail as it comes."""
    # aiosmtpd lists AUTH on a plain connection only when told it need not wait for TLS.
    with serve_smtp(SmtpHandler(), auth_require_tls=True) as peer:
        yield peer


class _NtlmOnlyHandler(SmtpHandler):
    """Offers AUTH by NTLM alone (with LOGIN and PLAIN excluded), a mechanism commq lacks."""

    async def auth_NTLM(self, server: SmtpSession, args: list[str]) -> AuthResult:
        return AuthResult(success=False)


@pytest.fixture
def ntlm_smtp_server() -> Iterator[SmtpPeer]:
    """An aiosmtpd server whose only AUTH mechanism is NTLM."""
    excluded = ["LOGIN", "PLAIN"]
    with serve_smtp(
        _NtlmOnlyHandler(), auth_require_tls=False, auth_exclude_mechanism=excluded
    ) as peer:
        yield peer


@pytest.fixture
def starttls_smtp_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpPeer]:
    """An aiosmtpd server offering STARTTLS, and AUTH only once the connection is encrypted.

    Its certificate (for 127.0.0.1) comes from a test CA that the process trusts
    through SSL_CERT_FILE, as a system CA store would be trusted.
    """
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)
    with serve_smtp(SmtpHandler(), tls_context=tls, auth_require_tls=True) as peer:
        yield peer


# ---------------------------------------------------------------- HTTP


@dataclass
class Recorded:
    """One request the HTTP server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server: _ScriptedServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.requests.append(Recorded("POST", self.path, headers, body))
        route = _ROUTES.get(self.path.split("?", 1)[0], _not_found)
        # The client may stop reading (the huge body) or give up (the slow answer).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self)

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def _ok(h: _Handler) -> None:
    h.answer(200, b'{"received":true}', Content_Type="application/json", X_Request_Id="req-123")


def _no_content(h: _Handler) -> None:
    h.answer(204)


def _redirect(h: _Handler) -> None:
    h.answer(302, Location="http://169.254.169.254/latest/meta-data/")


def _unavailable(h: _Handler) -> None:
    h.answer(503, b"down for maintenance", Retry_After="120")


def _rate_limited(h: _Handler) -> None:
    h.answer(429, b"slow down", Retry_After=h.server.retry_after_date)


def _bad_request(h: _Handler) -> None:
    h.answer(400, ("invalid event: " + "x" * 1000).encode())


def _gone(h: _Handler) -> None:
    h.answer(410, b"endpoint removed")


def _timeout_status(h: _Handler) -> None:
    h.answer(408, b"request timeout")


def _slow(h: _Handler) -> None:
    h.server.release.wait(5)
    h.answer(200, b"too late")


def _huge(h: _Handler) -> None:
    chunk = b"E" * 65536
    h.send_response(500)
    h.send_header("Content-Length", str(len(chunk) * 1600))  # 100 MiB, never fully read
    h.end_headers()
    for _ in range(1600):
        h.wfile.write(chunk)


def _binary(h: _Handler) -> None:
    h.answer(500, b"crash\x00ed \xff\xfe")


def _hang_up(h: _Handler) -> None:
    h.close_connection = True  # read the whole request, answer nothing


def _not_found(h: _Handler) -> None:
    h.answer(404, b"no such route")


_ROUTES: dict[str, Callable[[_Handler], None]] = {
    "/ok": _ok,
    "/no-content": _no_content,
    "/redirect": _redirect,
    "/unavailable": _unavailable,
    "/rate-limited": _rate_limited,
    "/bad": _bad_request,
    "/gone": _gone,
    "/request-timeout": _timeout_status,
    "/slow": _slow,
    "/huge": _huge,
    "/hang-up": _hang_up,
    "/binary": _binary,
}


class _ScriptedServer(ThreadingHTTPServer):
    # Non-daemon request threads, so server_close() joins them and no test leaks one.
    daemon_threads = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Recorded] = []
        #: Set at teardown so the slow route's thread ends and server_close can join it.
        self.release = threading.Event()
        self.retry_after_date = ""


@dataclass
class HttpPeer:
    """A running HTTP server: its base URL and the requests it received."""

    server: _ScriptedServer

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests

    def url(self, path: str) -> str:
        return self.base_url + path

    def set_retry_after_date(self, value: str) -> None:
        self.server.retry_after_date = value


@pytest.fixture
def http_server() -> Iterator[HttpPeer]:
    """A threaded HTTP server on 127.0.0.1 with one route per way a receiver can answer."""
    server = _ScriptedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield HttpPeer(server)
    finally:
        server.release.set()
        server.shutdown()
        thread.join()
        server.server_close()


# ---------------------------------------------------------------- provider fakes


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    """A fake SendGrid answering 202 until told otherwise."""
    with FakeSendGrid() as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio answering 201 until told otherwise."""
    with FakeTwilio() as fake:
        yield fake
    assert fake.errors == []
