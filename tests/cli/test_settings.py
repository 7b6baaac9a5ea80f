"""Configuration: defaults, the environment over commq.toml, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from commq.domain.jobs import Channel
from commq.entrypoints.settings import SettingsError, load_settings, parse_providers


def test_defaults_match_the_design(tmp_path: Path) -> None:
    settings = load_settings(environ={}, config_file=tmp_path / "none.toml")
    assert settings.database_url == "sqlite:///./commq.db"
    assert settings.providers == {
        Channel.EMAIL: ["outbox"],
        Channel.SMS: ["outbox"],
        Channel.WEBHOOK: ["webhook"],
    }
    assert (settings.max_attempts, settings.retry_backoff_base) == (3, 30.0)
    assert (settings.retry_backoff_max, settings.lease_seconds) == (3600.0, 60.0)


def test_the_environment_wins_over_commq_toml(tmp_path: Path) -> None:
    config = tmp_path / "commq.toml"
    config.write_text('COMMQ_MAX_ATTEMPTS = "7"\nCOMMQ_POLL_INTERVAL = "0.2"\n')
    settings = load_settings(environ={"COMMQ_MAX_ATTEMPTS": "5"}, config_file=config)
    assert settings.max_attempts == 5
    assert settings.poll_interval == 0.2


def test_a_failover_list_is_read_in_order() -> None:
    assert parse_providers("email=sendgrid|smtp") == {Channel.EMAIL: ["sendgrid", "smtp"]}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"COMMQ_PROVIDERS": "fax=outbox"}, "COMMQ_PROVIDERS"),
        ({"COMMQ_PROVIDERS": "email="}, "COMMQ_PROVIDERS"),
        ({"COMMQ_LEASE_SECONDS": "soon"}, "COMMQ_LEASE_SECONDS"),
        ({"COMMQ_RETRY_BACKOFF_MAX": "1e30"}, "COMMQ_RETRY_BACKOFF_MAX"),
        ({"COMMQ_DATABASE_URL": "mysql://x/y"}, "COMMQ_DATABASE_URL"),
        ({"COMMQ_MAX_ATTEMPTS": "0"}, "COMMQ_MAX_ATTEMPTS"),
    ],
)
def test_a_bad_value_names_its_variable(
    tmp_path: Path, environ: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=environ, config_file=tmp_path / "none.toml")
