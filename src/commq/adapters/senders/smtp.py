"""The SMTP sender: one connection per message, every reply classified by RFC 5321."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from commq.adapters.senders.email_message import (
    MESSAGE_POLICY,
    EmailEnvelope,
    build_email,
    single_address,
)
from commq.domain.jobs import Job
from commq.domain.outcomes import SendOutcome, SendResult

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
# RFC 5321 §4.5.2: a line of the content starting with "." gets a second one.
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to connect, read from an ``smtp://`` or ``smtps://`` URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    #: smtps://: TLS from the first byte.
    implicit_tls: bool = False
    #: ?starttls=true: upgrade a plain connection, and refuse to go on without it.
    starttls: bool = False


def parse_smtp_url(url: str) -> SmtpServer:
    """Read ``smtp://[user:pass@]host[:port][?starttls=true]`` or ``smtps://...``.

    Credentials are percent-decoded. Raises ValueError for anything else.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP URL must look like smtp://[user:pass@]host:port or smtps://...")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    starttls = _flag(query.pop("starttls", "false"))
    if query:
        raise ValueError(f"unknown SMTP URL options: {', '.join(sorted(query))}")
    implicit_tls = parts.scheme == "smtps"
    if implicit_tls and starttls:
        raise ValueError("smtps:// is already TLS; starttls applies to smtp:// only")
    default_port = 465 if implicit_tls else (587 if starttls else 25)
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or default_port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        implicit_tls=implicit_tls,
        starttls=starttls,
    )


def _flag(value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"starttls must be true or false, not {value!r}")


class _Stage(StrEnum):
    """How far one delivery got; decides what a lost connection means."""

    CONNECT = "connection setup"
    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"
    #: The whole message is on the wire: the server may have queued it.
    CONTENT = "the message content"
    #: The server answered 250 to the content.
    DONE = "done"


class _Delivery:
    """One message over one connection, remembering how far it got."""

    def __init__(self, smtp: aiosmtplib.SMTP, timeout: float) -> None:
        self.smtp = smtp
        self.timeout = timeout
        self.stage = _Stage.CONNECT

    async def run(self, envelope: EmailEnvelope, content: bytes) -> None:
        await self.smtp.connect()
        self.stage = _Stage.MAIL
        await self.smtp.mail(envelope.sender)
        self.stage = _Stage.RCPT
        await self.smtp.rcpt(envelope.recipient)
        self.stage = _Stage.DATA
        await self._transfer(content)
        self.stage = _Stage.DONE

    async def _transfer(self, content: bytes) -> None:
        # aiosmtplib's data() sends DATA and the content in one call, which hides
        # whether a timeout came before or after the message left us; that
        # difference is the one between "retry" and "maybe delivered".
        start = await self.smtp.execute_command(b"DATA")
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        protocol = self.smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        protocol.write(content)
        self.stage = _Stage.CONTENT
        reply = await protocol.read_response(timeout=self.timeout)
        if reply.code != 250:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)

    async def hang_up(self) -> None:
        # QUIT only after a clean exchange; after an error the session state is unknown.
        if self.stage is _Stage.DONE and self.smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self.smtp.quit(timeout=min(self.timeout, 5.0))
        self.smtp.close()


class SmtpSender:
    """Sends email jobs to one SMTP server.

    4xx replies are transient and 5xx permanent (RFC 5321 §4.2.1), wherever
    they come (greeting, AUTH, MAIL, RCPT, DATA). A connection lost or timed
    out before the content was sent is transient; after it, the server may
    have queued the message, so the result is ambiguous. The Message-ID is
    derived from the job id, so receivers can still drop a duplicate.
    """

    name = "smtp"

    def __init__(self, url: str, email_from: str, timeout: float = 30.0) -> None:
        self._server = parse_smtp_url(url)
        single_address("sender address", email_from)
        self._email_from = email_from
        self._timeout = timeout

    async def send(self, job: Job) -> SendResult:
        """Deliver one message on a fresh connection and classify the outcome."""
        try:
            envelope = build_email(job, self._email_from)
            content = _wire_bytes(envelope)
        except ValueError as exc:
            return SendResult(SendOutcome.PERMANENT, self.name, error=str(exc))
        delivery = _Delivery(self._client(), self._timeout)
        try:
            await delivery.run(envelope, content)
        except aiosmtplib.SMTPResponseException as exc:
            return self._refused(exc, delivery.stage)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return self._lost(exc, delivery.stage)
        finally:
            await delivery.hang_up()
        return SendResult.ok(self.name, provider_message_id=envelope.message_id)

    async def close(self) -> None:
        """Nothing to release: every send opens and closes its own connection."""

    def _client(self) -> aiosmtplib.SMTP:
        server = self._server
        return aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=server.starttls,
            timeout=self._timeout,
        )

    def _refused(self, exc: aiosmtplib.SMTPResponseException, stage: _Stage) -> SendResult:
        text = " ".join(exc.message.split())
        error = f"SMTP {exc.code} {text} (at {stage})"
        if 400 <= exc.code < 500:
            outcome = SendOutcome.TRANSIENT
        elif 500 <= exc.code < 600:
            outcome = SendOutcome.PERMANENT
        else:
            # Not a reply RFC 5321 allows here: treat like a broken connection.
            outcome = SendOutcome.AMBIGUOUS if stage is _Stage.CONTENT else SendOutcome.TRANSIENT
        return SendResult(outcome, self.name, error=error)

    def _lost(self, exc: Exception, stage: _Stage) -> SendResult:
        what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc}"
        if stage is _Stage.CONTENT:
            error = (
                f"SMTP {what} waiting for the reply to {stage}; "
                "the server may have accepted the message"
            )
            return SendResult(SendOutcome.AMBIGUOUS, self.name, error=error)
        error = f"SMTP {what} during {stage}"
        return SendResult(SendOutcome.TRANSIENT, self.name, error=error)


def _wire_bytes(envelope: EmailEnvelope) -> bytes:
    """The DATA content: CRLF lines, dot-stuffed, ending with the lone "." line."""
    raw = envelope.message.as_bytes(policy=MESSAGE_POLICY)
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return _LEADING_DOT.sub(b"..", raw) + b".\r\n"
