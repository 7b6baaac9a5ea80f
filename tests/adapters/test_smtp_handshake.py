"""STARTTLS and AUTH against real aiosmtpd servers that offer them, or do not."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from commq.adapters.senders import SmtpSender
from commq.domain.jobs import Job
from commq.domain.outcomes import Blame, SendOutcome, SendResult

if TYPE_CHECKING:
    from conftest import SmtpPeer

JobFactory = Callable[..., Job]
FROM = "Commq <noreply@commq.test>"
CREDENTIALS = "alice:p%40ss%3Aword"


async def send_once(url: str, job: Job) -> SendResult:
    sender = SmtpSender(url, FROM, timeout=5.0)
    try:
        return await sender.send(job)
    finally:
        await sender.close()


def _is_misconfigured(result: SendResult) -> bool:
    # Provider-level: jobs wait without using attempts and the circuit opens at once.
    return (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.PROVIDER)


async def test_starttls_and_auth_over_it_deliver_the_message(
    make_job: JobFactory, starttls_smtp_server: SmtpPeer
) -> None:
    url = f"smtp://{CREDENTIALS}@127.0.0.1:{starttls_smtp_server.port}?starttls=true"

    result = await send_once(url, make_job())

    assert result.outcome is SendOutcome.OK
    assert starttls_smtp_server.handler.logins == [(b"alice", b"p@ss:word")]
    assert len(starttls_smtp_server.handler.received) == 1


async def test_a_server_without_starttls_is_a_configuration_mismatch_not_an_outage(
    make_job: JobFactory, smtp_server_without_auth: SmtpPeer
) -> None:
    url = f"smtp://127.0.0.1:{smtp_server_without_auth.port}?starttls=true"

    result = await send_once(url, make_job())

    assert _is_misconfigured(result)
    assert result.error is not None
    assert result.error.startswith("SMTP server does not support STARTTLS")
    assert "check COMMQ_SMTP_URL" in result.error
    # Nothing about the message was sent over the unencrypted connection.
    assert smtp_server_without_auth.handler.mail_peers == []


async def test_a_server_without_auth_is_a_configuration_mismatch_not_an_outage(
    make_job: JobFactory, smtp_server_without_auth: SmtpPeer
) -> None:
    url = f"smtp://{CREDENTIALS}@127.0.0.1:{smtp_server_without_auth.port}"

    result = await send_once(url, make_job())

    assert _is_misconfigured(result)
    assert result.error is not None
    assert result.error.startswith("SMTP server does not support AUTH")
    assert "check COMMQ_SMTP_URL" in result.error
    assert "?starttls=true" in result.error  # plain connection: TLS may be what is missing
    assert smtp_server_without_auth.handler.mail_peers == []


async def test_auth_offered_only_after_starttls_names_the_missing_starttls(
    make_job: JobFactory, starttls_smtp_server: SmtpPeer
) -> None:
    url = f"smtp://{CREDENTIALS}@127.0.0.1:{starttls_smtp_server.port}"

    result = await send_once(url, make_job())

    assert _is_misconfigured(result)
    assert result.error is not None
    assert "add ?starttls=true or use smtps://" in result.error
    assert starttls_smtp_server.handler.logins == []


async def test_auth_by_mechanisms_commq_cannot_use_names_them(
    make_job: JobFactory, ntlm_smtp_server: SmtpPeer
) -> None:
    url = f"smtp://{CREDENTIALS}@127.0.0.1:{ntlm_smtp_server.port}"

    result = await send_once(url, make_job())

    assert _is_misconfigured(result)
    assert result.error is not None
    assert result.error.startswith("SMTP server offers AUTH only by mechanisms commq cannot use")
    assert "(NTLM;" in result.error
    assert "check COMMQ_SMTP_URL" in result.error


async def test_a_server_without_auth_takes_mail_when_no_credentials_are_configured(
    make_job: JobFactory, smtp_server_without_auth: SmtpPeer
) -> None:
    result = await send_once(smtp_server_without_auth.url, make_job())

    assert result.outcome is SendOutcome.OK
