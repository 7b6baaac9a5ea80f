"""Provider callbacks about sent messages: verified, then parsed into domain DeliveryEvents."""

from commq.adapters.callbacks.sendgrid_events import SendGridEventWebhook
from commq.adapters.callbacks.signatures import SignatureError
from commq.adapters.callbacks.twilio_status import TwilioStatusCallback

__all__ = ["SendGridEventWebhook", "SignatureError", "TwilioStatusCallback"]
