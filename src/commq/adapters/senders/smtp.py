"""The SMTP sender: pooled connections, every reply classified by RFC 3463 and RFC 5321."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from commq.adapters.senders.classification import NO_ANSWER, NOT_SENT, lookup
from commq.adapters.senders.classification.smtp import (
    MISSING_EXTENSION,
    SMTP,
    enhanced_status,
    smtp_keys,
)
from commq.adapters.senders.email_message import (
    MESSAGE_POLICY,
    EmailEnvelope,
    build_email,
    single_address,
)
from commq.adapters.senders.smtp_handshake import Handshake, MissingExtensionError
from commq.adapters.senders.smtp_pool import SmtpPool
from commq.adapters.senders.smtp_session import REUSABLE_AFTER_REFUSAL, Delivery, Stage
from commq.adapters.storable_text import storable
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


class SmtpSender:
    """Sends email jobs to one SMTP server, reusing connections across messages.

    Replies are classified by ``classification.smtp.SMTP``: RFC 3463 enhanced
    status codes first, the RFC 5321 reply code next, and the enhanced code
    is kept at the front of the error ("SMTP 550 5.1.1 ... (at RCPT TO)"). A
    connection lost or timed out before the content was sent is a provider
    outage; after it, the server may have queued the message, so the result
    is ambiguous. A server whose EHLO lacks the STARTTLS or AUTH that the URL
    asks for is a configuration fault whose error names COMMQ_SMTP_URL (see
    ``smtp_handshake``). The Message-ID is derived from the job id, so
    receivers can still drop a duplicate.

    Up to ``max_connections`` connections stay open for ``max_idle`` seconds
    between messages (see ``SmtpPool``); ``close()`` ends them with QUIT.
    """

    name = "smtp"

    def __init__(
        self,
        url: str,
        email_from: str,
        timeout: float = 30.0,
        *,
        max_connections: int = 10,
        max_idle: float = 5.0,
        max_messages: int = 100,
    ) -> None:
        self._server = server = parse_smtp_url(url)
        self._handshake = Handshake(server.starttls, server.username, server.password)
        single_address("sender address", email_from)
        self._email_from = email_from
        self._timeout = timeout
        self._pool = SmtpPool(
            self._client,
            size=max_connections,
            max_idle=max_idle,
            max_messages=max_messages,
            timeout=timeout,
        )

    async def send(self, job: Job) -> SendResult:
        """Deliver one message on a pooled connection and classify the outcome."""
        try:
            envelope = build_email(job, self._email_from)
            content = _wire_bytes(envelope)
        except ValueError as exc:
            return SendResult(SendOutcome.PERMANENT, self.name, error=str(exc))
        pooled = await self._pool.acquire()
        delivery = Delivery(pooled.smtp, self._timeout, self._handshake)
        reusable = False
        try:
            await delivery.run(envelope, content)
            reusable = True
        except MissingExtensionError as exc:
            return self._mismatch(exc)
        except aiosmtplib.SMTPResponseException as exc:
            reusable = delivery.stage in REUSABLE_AFTER_REFUSAL and exc.code != 421
            return self._refused(exc, delivery.stage)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return self._lost(exc, delivery.stage)
        finally:
            await self._pool.release(pooled, reusable)
        return SendResult.ok(self.name, provider_message_id=envelope.message_id)

    async def close(self) -> None:
        """QUIT the connections kept open between messages."""
        await self._pool.close()

    def _client(self) -> aiosmtplib.SMTP:
        server = self._server
        # STARTTLS and AUTH are left to the handshake, which checks the server offers them.
        return aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.implicit_tls,
            start_tls=False,
            timeout=self._timeout,
        )

    def _refused(self, exc: aiosmtplib.SMTPResponseException, stage: Stage) -> SendResult:
        text = " ".join(storable(exc.message).split())
        enhanced = enhanced_status(exc.code, text)
        keys = smtp_keys(exc.code, enhanced, in_session=stage is Stage.CONNECT)
        # A reply RFC 5321 does not allow here: treat it like a broken connection.
        lost = NO_ANSWER if stage is Stage.CONTENT else NOT_SENT
        verdict = lookup(SMTP, [*keys, lost], SMTP[lost])
        shown = f"{exc.code} {text}" if text else str(exc.code)
        error = f"SMTP {shown} (at {stage})"
        return SendResult(verdict.outcome, self.name, error=error, blame=verdict.blame)

    def _mismatch(self, exc: MissingExtensionError) -> SendResult:
        verdict = SMTP[MISSING_EXTENSION]
        error = _mismatch_error(exc)
        return SendResult(verdict.outcome, self.name, error=error, blame=verdict.blame)

    def _lost(self, exc: Exception, stage: Stage) -> SendResult:
        what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {storable(str(exc))}"
        if stage is Stage.CONTENT:
            verdict = SMTP[NO_ANSWER]
            error = (
                f"SMTP {what} waiting for the reply to {stage}; "
                "the server may have accepted the message"
            )
        else:
            verdict = SMTP[NOT_SENT]
            error = f"SMTP {what} during {stage}"
        return SendResult(verdict.outcome, self.name, error=error, blame=verdict.blame)


def _mismatch_error(exc: MissingExtensionError) -> str:
    """lastError for a server that lacks what COMMQ_SMTP_URL asks for, saying what to fix."""
    if exc.extension == "STARTTLS":
        return (
            "SMTP server does not support STARTTLS, which COMMQ_SMTP_URL asks for "
            "(?starttls=true); check COMMQ_SMTP_URL: the host and port of a server that "
            "offers STARTTLS (often 587), or smtps:// for implicit TLS (often 465)"
        )
    if exc.offered:
        mechanisms = storable(" ".join(exc.offered).upper())[:200]
        return (
            f"SMTP server offers AUTH only by mechanisms commq cannot use ({mechanisms}; "
            "commq uses CRAM-MD5, PLAIN or LOGIN); check COMMQ_SMTP_URL and the server's "
            "AUTH settings"
        )
    where = (
        "many servers offer AUTH only over TLS: add ?starttls=true or use smtps://"
        if not exc.tls
        else "the host and port of the server's submission service"
    )
    return (
        "SMTP server does not support AUTH, but COMMQ_SMTP_URL has credentials; "
        f"check COMMQ_SMTP_URL: {where}, or leave the credentials out for a relay that "
        "needs none"
    )


def _wire_bytes(envelope: EmailEnvelope) -> bytes:
    """The DATA content: CRLF lines, dot-stuffed, ending with the lone "." line."""
    raw = envelope.message.as_bytes(policy=MESSAGE_POLICY)
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return _LEADING_DOT.sub(b"..", raw) + b".\r\n"
