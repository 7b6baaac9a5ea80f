"""Senders: each delivers one job's message through one provider and classifies the answer."""

from commq.adapters.senders.email_message import EmailEnvelope, build_email, message_id_for
from commq.adapters.senders.hostguard import HostGuard, RefusedAddressError
from commq.adapters.senders.outbox import OutboxSender
from commq.adapters.senders.smtp import SmtpSender, SmtpServer, parse_smtp_url
from commq.adapters.senders.webhook import WebhookSender, parse_retry_after

__all__ = [
    "EmailEnvelope",
    "HostGuard",
    "OutboxSender",
    "RefusedAddressError",
    "SmtpSender",
    "SmtpServer",
    "WebhookSender",
    "build_email",
    "message_id_for",
    "parse_retry_after",
    "parse_smtp_url",
]
