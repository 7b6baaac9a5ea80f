"""Alert notifications: a Slack-compatible incoming webhook (JSON ``{"text": ...}``).

The URL is the operator's own configuration (COMMQ_ALERT_WEBHOOK_URL), not
input from an API caller, so it does not go through the SSRF guard that job
webhooks do: an internal alert relay on a private address is a normal setup.
"""

from __future__ import annotations

import logging

import httpx

from commq.domain.alerts import Alert

log = logging.getLogger("commq.alerts")

#: Seconds one notification may take; a round must not hang on a slow receiver.
NOTIFY_TIMEOUT = 10.0


class SlackWebhookNotifier:
    """POSTs each alert's message to one incoming-webhook URL (Slack, Mattermost, ...)."""

    def __init__(self, url: str, timeout: float = NOTIFY_TIMEOUT) -> None:
        self._url = url
        self._timeout = timeout

    async def notify(self, alert: Alert) -> bool:
        """True when the receiver answered 2xx."""
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
                response = await client.post(self._url, json={"text": alert.message})
        except httpx.HTTPError as exc:
            log.warning("alert webhook unreachable: %s", type(exc).__name__)
            return False
        if response.is_success:
            return True
        log.warning("alert webhook answered %s", response.status_code)
        return False
