"""Wiring of the alert rules: settings to policy, and the AlertService over the SQL store."""

from __future__ import annotations

from datetime import timedelta

from commq.adapters.notifications import SlackWebhookNotifier
from commq.adapters.store.sql_alert_store import SqlAlertStore
from commq.application.alerts import AlertService
from commq.domain.alerts import AlertPolicy, AlertRule, AlertRuleKind
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.settings import AlertSettings


def alert_policy(settings: AlertSettings) -> AlertPolicy:
    """The configured rules (none: alerting is off)."""
    thresholds = {
        AlertRuleKind.FAILED_JOBS: settings.failed_jobs,
        AlertRuleKind.OLDEST_PENDING_AGE: settings.oldest_pending_seconds,
        AlertRuleKind.FAILURE_RATE: settings.failure_rate,
    }
    return AlertPolicy(
        rules=tuple(AlertRule(k, float(t)) for k, t in thresholds.items() if t is not None),
        per_business=settings.per_business,
        cooldown=timedelta(seconds=settings.cooldown),
        window=timedelta(seconds=settings.failure_rate_window),
        min_attempts=settings.failure_rate_min_attempts,
    )


def alert_service(container: Container) -> AlertService:
    """Alert rounds and the alert list over this container's database."""
    settings = container.settings.alerts
    notifier = SlackWebhookNotifier(settings.webhook_url) if settings.webhook_url else None
    return AlertService(SqlAlertStore(container.engine), notifier, alert_policy(settings))
