"""Configuration from the environment, or a commq.toml beside the process (DESIGN §5).

The environment wins over the file, so one deployment file can be overridden
per process.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from commq.domain.jobs import Channel

DEFAULT_PROVIDERS = "email=outbox,sms=outbox,webhook=webhook"


class SettingsError(ValueError):
    """A configuration value could not be read."""


@dataclass(frozen=True)
class Settings:
    """Every setting commq reads; only entrypoints build one."""

    database_url: str = "sqlite:///./commq.db"
    providers: dict[Channel, list[str]] = field(default_factory=dict)
    outbox_dir: Path = Path("./outbox")
    smtp_url: str = "smtp://127.0.0.1:25"
    email_from: str = "commq@localhost"
    webhook_allowed_hosts: str = ""
    max_attempts: int = 3
    retry_backoff_base: float = 30.0
    retry_backoff_max: float = 3600.0
    lease_seconds: float = 60.0
    poll_interval: float = 1.0
    concurrency: int = 50
    shutdown_grace: float = 10.0
    metrics_token: str | None = None


def parse_providers(text: str) -> dict[Channel, list[str]]:
    """``email=sendgrid|smtp,sms=outbox`` → {email: [sendgrid, smtp], sms: [outbox]}."""
    providers: dict[Channel, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        channel, _, names = item.partition("=")
        try:
            key = Channel(channel.strip())
        except ValueError:
            raise SettingsError(f"COMMQ_PROVIDERS: unknown channel {channel!r}") from None
        order = [name.strip() for name in names.split("|") if name.strip()]
        if not order:
            raise SettingsError(f"COMMQ_PROVIDERS: no provider named for {channel!r}")
        providers[key] = order
    return providers


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Read the settings; raises SettingsError naming the variable that is wrong."""
    values = dict(_read_file(config_file or Path("commq.toml")))
    values.update(
        {
            k: v
            for k, v in (os.environ if environ is None else environ).items()
            if k.startswith("COMMQ_")
        }
    )
    providers = parse_providers(DEFAULT_PROVIDERS)
    providers.update(parse_providers(values.get("COMMQ_PROVIDERS", "")))
    return Settings(
        database_url=_database_url(values.get("COMMQ_DATABASE_URL", Settings.database_url)),
        providers=providers,
        outbox_dir=Path(values.get("COMMQ_OUTBOX_DIR", "./outbox")),
        smtp_url=values.get("COMMQ_SMTP_URL", Settings.smtp_url),
        email_from=values.get("COMMQ_EMAIL_FROM", Settings.email_from),
        webhook_allowed_hosts=values.get("COMMQ_WEBHOOK_ALLOWED_HOSTS", ""),
        max_attempts=_int(values, "COMMQ_MAX_ATTEMPTS", 3, minimum=1),
        retry_backoff_base=_seconds(values, "COMMQ_RETRY_BACKOFF_BASE", 30.0),
        retry_backoff_max=_seconds(values, "COMMQ_RETRY_BACKOFF_MAX", 3600.0, maximum=_THIRTY_DAYS),
        lease_seconds=_seconds(values, "COMMQ_LEASE_SECONDS", 60.0, minimum=0.05),
        poll_interval=_seconds(values, "COMMQ_POLL_INTERVAL", 1.0, minimum=0.01),
        concurrency=_int(values, "COMMQ_CONCURRENCY", 50, minimum=1),
        shutdown_grace=_seconds(values, "COMMQ_SHUTDOWN_GRACE", 10.0),
        metrics_token=values.get("COMMQ_METRICS_TOKEN") or None,
    )


def _database_url(url: str) -> str:
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise SettingsError(
            "COMMQ_DATABASE_URL must start with sqlite:/// or postgresql:// (no driver suffix)"
        )
    return url


def _read_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from None
    return {str(k): str(v) for k, v in data.items() if not isinstance(v, dict)}


def _int(values: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    try:
        number = int(values.get(name, default))
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None
    if number < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return number


_THIRTY_DAYS = 30 * 24 * 3600.0


def _seconds(
    values: Mapping[str, str],
    name: str,
    default: float,
    minimum: float = 0.0,
    maximum: float = _THIRTY_DAYS,
) -> float:
    try:
        number = float(values.get(name, default))
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds") from None
    if not minimum <= number <= maximum:
        raise SettingsError(f"{name} must be between {minimum} and {maximum:g} seconds")
    return number
