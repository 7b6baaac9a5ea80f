"""One message over one SMTP connection, remembering how far it got."""

from __future__ import annotations

from enum import StrEnum

import aiosmtplib

from commq.adapters.senders.email_message import EmailEnvelope
from commq.adapters.senders.smtp_handshake import Handshake, open_session


class Stage(StrEnum):
    """How far one delivery got; decides what a refusal or a lost connection means."""

    #: Connecting, greeting, EHLO, STARTTLS, AUTH: nothing about the message yet.
    CONNECT = "connection setup"
    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"
    #: The whole message is on the wire: the server may have queued it.
    CONTENT = "the message content"
    #: The server answered 250 to the content.
    DONE = "done"


#: After a refusal at these stages the session is intact (RFC 5321 §4.1.1.5: RSET
#: clears it), so the connection can carry the next message.
REUSABLE_AFTER_REFUSAL = frozenset({Stage.MAIL, Stage.RCPT, Stage.DATA})


class Delivery:
    """Sends one message on ``smtp``, opening the session first if it is not connected yet."""

    def __init__(self, smtp: aiosmtplib.SMTP, timeout: float, handshake: Handshake) -> None:
        self.smtp = smtp
        self.timeout = timeout
        self.handshake = handshake
        self.stage = Stage.CONNECT

    async def run(self, envelope: EmailEnvelope, content: bytes) -> None:
        """MAIL, RCPT, DATA and the content.

        Raises aiosmtplib errors, OSError, and MissingExtensionError while connecting.
        """
        if not self.smtp.is_connected:
            await open_session(self.smtp, self.handshake)
        self.stage = Stage.MAIL
        await self.smtp.mail(envelope.sender)
        self.stage = Stage.RCPT
        await self.smtp.rcpt(envelope.recipient)
        self.stage = Stage.DATA
        await self._transfer(content)
        self.stage = Stage.DONE

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
        self.stage = Stage.CONTENT
        reply = await protocol.read_response(timeout=self.timeout)
        if reply.code != 250:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
