"""Opening an SMTP session: greeting, STARTTLS and AUTH, each checked against the EHLO.

aiosmtplib can do all of it inside ``connect()``, but a server that does not
offer an extension commq was told to use then fails like any broken
connection, and the operator sees an outage where a setting is wrong. Here
the EHLO answer is read first, so that case has an error of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosmtplib

from commq.domain.errors import CommqError


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a new connection does before its first message."""

    #: Upgrade the plain connection with STARTTLS, and refuse to go on without it.
    starttls: bool = False
    #: Log in with AUTH (None: do not).
    username: str | None = None
    password: str | None = None


class MissingExtensionError(CommqError):
    """The SMTP server does not offer an extension commq is configured to use."""

    def __init__(self, extension: str, offered: list[str], tls: bool) -> None:
        super().__init__(f"the SMTP server does not offer {extension}")
        #: "STARTTLS" or "AUTH".
        self.extension = extension
        #: For AUTH: the mechanisms the server offers (none of which commq can use).
        self.offered = offered
        #: Whether the connection was already encrypted when the extension was missing.
        self.tls = tls


async def open_session(smtp: aiosmtplib.SMTP, handshake: Handshake) -> None:
    """Connect, then STARTTLS and AUTH as configured.

    Raises MissingExtensionError when the server's EHLO does not list what the
    configuration needs, and aiosmtplib errors or OSError otherwise.
    """
    await smtp.connect()
    if handshake.starttls:
        await _greet(smtp)
        if not smtp.supports_extension("starttls"):
            raise MissingExtensionError("STARTTLS", [], tls=False)
        await smtp.starttls()
    if handshake.username is not None:
        await _greet(smtp)  # again after STARTTLS: RFC 3207 §4.2 drops what was learnt before
        if not smtp.supported_auth_methods:
            tls = smtp.get_transport_info("sslcontext") is not None
            raise MissingExtensionError("AUTH", smtp.server_auth_methods, tls)
        await smtp.login(handshake.username, handshake.password or "")


async def _greet(smtp: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO for a server without ESMTP (which then offers no extension)."""
    if not smtp.is_ehlo_or_helo_needed:
        return
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not smtp.is_connected:
            raise
        await smtp.helo()
