"""The COMMQ_ALERT_* and worker metrics settings, and the alert policy built from them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from commq.domain.alerts import AlertRule, AlertRuleKind
from commq.entrypoints.alerting import alert_policy
from commq.entrypoints.settings import AlertSettings, SettingsError, load_settings


def test_alerting_is_off_by_default(tmp_path: Path) -> None:
    settings = load_settings(environ={}, config_file=tmp_path / "none.toml")
    assert settings.alerts == AlertSettings()
    assert alert_policy(settings.alerts).rules == ()
    assert settings.worker_metrics_port is None


def test_every_rule_and_option_is_read(tmp_path: Path) -> None:
    environ = {
        "COMMQ_ALERT_FAILED_JOBS": "10",
        "COMMQ_ALERT_OLDEST_PENDING_SECONDS": "300",
        "COMMQ_ALERT_FAILURE_RATE": "20%",
        "COMMQ_ALERT_FAILURE_RATE_WINDOW": "600",
        "COMMQ_ALERT_FAILURE_RATE_MIN_ATTEMPTS": "50",
        "COMMQ_ALERT_SCOPE": "business",
        "COMMQ_ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
        "COMMQ_ALERT_COOLDOWN": "900",
        "COMMQ_ALERT_INTERVAL": "15",
        "COMMQ_WORKER_METRICS_PORT": "9101",
    }
    settings = load_settings(environ=environ, config_file=tmp_path / "none.toml")
    policy = alert_policy(settings.alerts)
    assert policy.rules == (
        AlertRule(AlertRuleKind.FAILED_JOBS, 10),
        AlertRule(AlertRuleKind.OLDEST_PENDING_AGE, 300),
        AlertRule(AlertRuleKind.FAILURE_RATE, 0.2),
    )
    assert policy.per_business
    assert (policy.cooldown, policy.window, policy.min_attempts) == (
        timedelta(seconds=900),
        timedelta(seconds=600),
        50,
    )
    assert settings.alerts.webhook_url == "https://hooks.slack.com/services/T0/B0/x"
    assert settings.alerts.interval == 15
    assert settings.worker_metrics_port == 9101


def test_commq_toml_may_set_the_rules(tmp_path: Path) -> None:
    config = tmp_path / "commq.toml"
    config.write_text("COMMQ_ALERT_FAILED_JOBS = 5\nCOMMQ_ALERT_FAILURE_RATE = 0.1\n")
    settings = load_settings(environ={}, config_file=config)
    assert (settings.alerts.failed_jobs, settings.alerts.failure_rate) == (5, 0.1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COMMQ_ALERT_FAILED_JOBS", "ten"),
        ("COMMQ_ALERT_FAILED_JOBS", "-1"),
        ("COMMQ_ALERT_FAILURE_RATE", "1.5"),
        ("COMMQ_ALERT_FAILURE_RATE", "abc%"),
        ("COMMQ_ALERT_SCOPE", "tenant"),
        ("COMMQ_ALERT_WEBHOOK_URL", "ftp://example.com/hook"),
        ("COMMQ_ALERT_INTERVAL", "0"),
        ("COMMQ_ALERT_COOLDOWN", "soon"),
    ],
)
def test_a_bad_alert_setting_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(environ={name: value}, config_file=tmp_path / "none.toml")
