"""Senders: each delivers one job's message through one provider and classifies the answer.

How answers are classified lives in ``classification``: one table per provider.
"""

from commq.adapters.senders.email_message import EmailEnvelope, build_email, message_id_for
from commq.adapters.senders.hostguard import HostGuard, RefusedAddressError
from commq.adapters.senders.http_exchange import parse_retry_after
from commq.adapters.senders.outbox import OutboxSender
from commq.adapters.senders.sendgrid import SendGridSender
from commq.adapters.senders.smtp import SmtpSender, SmtpServer, parse_smtp_url
from commq.adapters.senders.twilio import TwilioSender
from commq.adapters.senders.webhook import WebhookSender
from commq.adapters.senders.webhook_signing import (
    WebhookSecrets,
    WebhookSigner,
    new_secret,
    parse_secret,
    parse_secrets,
)

__all__ = [
    "EmailEnvelope",
    "HostGuard",
    "OutboxSender",
    "RefusedAddressError",
    "SendGridSender",
    "SmtpSender",
    "SmtpServer",
    "TwilioSender",
    "WebhookSecrets",
    "WebhookSender",
    "WebhookSigner",
    "build_email",
    "message_id_for",
    "new_secret",
    "parse_retry_after",
    "parse_secret",
    "parse_secrets",
    "parse_smtp_url",
]
