"""Configuration from the environment, or a commq.toml beside the process (DESIGN §5).

The environment wins over the file, so one deployment file can be overridden
per process.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from commq.domain.jobs import Channel
from commq.domain.ratelimit import RateLimit, parse_rate_limits

DEFAULT_PROVIDERS = "email=outbox,sms=outbox,webhook=webhook"

_T = TypeVar("_T")


class SettingsError(ValueError):
    """A configuration value could not be read."""


@dataclass(frozen=True)
class AlertSettings:
    """The COMMQ_ALERT_* settings: alerting is off while no rule is set."""

    failed_jobs: int | None = None
    oldest_pending_seconds: float | None = None
    failure_rate: float | None = None
    failure_rate_window: float = 900.0
    failure_rate_min_attempts: int = 10
    #: True: each business is alerted on separately (COMMQ_ALERT_SCOPE=business).
    per_business: bool = False
    webhook_url: str | None = None
    cooldown: float = 3600.0
    interval: float = 30.0


@dataclass(frozen=True)
class ReliabilitySettings:
    """Provider rate limits, circuit breakers and delivery-status callbacks."""

    #: COMMQ_RATE_LIMITS: sends per provider across all workers.
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    #: COMMQ_CIRCUIT_COOLDOWN: seconds an open circuit waits before a half-open probe.
    circuit_cooldown: float = 30.0
    #: COMMQ_CIRCUIT_THRESHOLD: consecutive provider failures that open a circuit.
    circuit_threshold: int = 5
    #: COMMQ_SENDGRID_WEBHOOK_PUBLIC_KEY: verifies SendGrid's signed Event Webhook.
    sendgrid_webhook_public_key: str | None = None
    #: COMMQ_TWILIO_AUTH_TOKEN: verifies Twilio's status callbacks (X-Twilio-Signature).
    twilio_auth_token: str | None = None


@dataclass(frozen=True)
class ProviderSettings:
    """Credentials and endpoints of the HTTP providers (DESIGN §5)."""

    sendgrid_api_key: str | None = None
    #: Tests point this at a local fake; production uses SendGrid's.
    sendgrid_base_url: str = "https://api.sendgrid.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    #: COMMQ_WEBHOOK_SECRETS: ``biz=whsec_…|whsec_…,biz2=whsec_…`` signs webhooks per business.
    webhook_secrets: str = ""


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
    concurrency: int = 100
    shutdown_grace: float = 10.0
    metrics_token: str | None = None
    #: Completed and cancelled jobs are deleted this many days after they finished (0: never).
    retention_days: int = 30
    alerts: AlertSettings = field(default_factory=AlertSettings)
    provider_settings: ProviderSettings = field(default_factory=ProviderSettings)
    reliability: ReliabilitySettings = field(default_factory=ReliabilitySettings)
    #: `commq worker` serves its own /metrics on this port (None: it does not).
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "127.0.0.1"
    #: Signs dashboard sessions; None: a secret generated once and kept in a file.
    session_secret: str | None = None


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
        concurrency=_int(values, "COMMQ_CONCURRENCY", 100, minimum=1),
        shutdown_grace=_seconds(values, "COMMQ_SHUTDOWN_GRACE", 10.0),
        metrics_token=values.get("COMMQ_METRICS_TOKEN") or None,
        retention_days=_int(values, "COMMQ_RETENTION_DAYS", 30),
        alerts=_alert_settings(values),
        reliability=_reliability_settings(values),
        provider_settings=_provider_settings(values),
        worker_metrics_port=_optional(values, "COMMQ_WORKER_METRICS_PORT", _int),
        worker_metrics_host=values.get("COMMQ_WORKER_METRICS_HOST") or "127.0.0.1",
        session_secret=values.get("COMMQ_SESSION_SECRET") or None,
    )


def _database_url(url: str) -> str:
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise SettingsError(
            "COMMQ_DATABASE_URL must start with sqlite:/// or postgresql:// (no driver suffix)"
        )
    if url.startswith("sqlite:///") and url[10:].split("?")[0] in ("", ":memory:"):
        # Every connection of the pool would open a new, empty in-memory database.
        raise SettingsError("COMMQ_DATABASE_URL must name a SQLite file, e.g. sqlite:///./commq.db")
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


def _optional(values: Mapping[str, str], name: str, parse: Callable[..., _T]) -> _T | None:
    """``parse`` the variable, or None while it is unset or empty."""
    if not values.get(name, "").strip():
        return None
    return parse(values, name, 0)


def _fraction(values: Mapping[str, str], name: str, default: float) -> float:
    raw = values.get(name, str(default)).strip()
    try:
        number = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a fraction (0.2) or a percentage (20%)") from None
    if not 0.0 <= number < 1.0:
        raise SettingsError(f"{name} must be at least 0 and below 1 (100%)")
    return number


def _alert_settings(values: Mapping[str, str]) -> AlertSettings:
    scope = values.get("COMMQ_ALERT_SCOPE", "global").strip().lower()
    if scope not in ("global", "business"):
        raise SettingsError("COMMQ_ALERT_SCOPE must be global or business")
    url = values.get("COMMQ_ALERT_WEBHOOK_URL", "").strip() or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise SettingsError("COMMQ_ALERT_WEBHOOK_URL must be an http:// or https:// URL")
    return AlertSettings(
        failed_jobs=_optional(values, "COMMQ_ALERT_FAILED_JOBS", _int),
        oldest_pending_seconds=_optional(values, "COMMQ_ALERT_OLDEST_PENDING_SECONDS", _seconds),
        failure_rate=_optional(values, "COMMQ_ALERT_FAILURE_RATE", _fraction),
        failure_rate_window=_seconds(values, "COMMQ_ALERT_FAILURE_RATE_WINDOW", 900.0, 1.0),
        failure_rate_min_attempts=_int(values, "COMMQ_ALERT_FAILURE_RATE_MIN_ATTEMPTS", 10, 1),
        per_business=scope == "business",
        webhook_url=url,
        cooldown=_seconds(values, "COMMQ_ALERT_COOLDOWN", 3600.0),
        interval=_seconds(values, "COMMQ_ALERT_INTERVAL", 30.0, minimum=0.01),
    )


def _provider_settings(values: Mapping[str, str]) -> ProviderSettings:
    return ProviderSettings(
        sendgrid_api_key=values.get("COMMQ_SENDGRID_API_KEY") or None,
        sendgrid_base_url=values.get("COMMQ_SENDGRID_BASE_URL")
        or ProviderSettings.sendgrid_base_url,
        twilio_account_sid=values.get("COMMQ_TWILIO_ACCOUNT_SID") or None,
        twilio_auth_token=values.get("COMMQ_TWILIO_AUTH_TOKEN") or None,
        twilio_from=values.get("COMMQ_TWILIO_FROM") or None,
        twilio_base_url=values.get("COMMQ_TWILIO_BASE_URL") or ProviderSettings.twilio_base_url,
        webhook_secrets=values.get("COMMQ_WEBHOOK_SECRETS", ""),
    )


def _reliability_settings(values: Mapping[str, str]) -> ReliabilitySettings:
    try:
        limits = parse_rate_limits(values.get("COMMQ_RATE_LIMITS", ""))
    except ValueError as exc:
        raise SettingsError(f"COMMQ_RATE_LIMITS: {exc}") from None
    return ReliabilitySettings(
        rate_limits=limits,
        circuit_cooldown=_seconds(values, "COMMQ_CIRCUIT_COOLDOWN", 30.0, minimum=0.01),
        circuit_threshold=_int(values, "COMMQ_CIRCUIT_THRESHOLD", 5, minimum=1),
        sendgrid_webhook_public_key=values.get("COMMQ_SENDGRID_WEBHOOK_PUBLIC_KEY") or None,
        twilio_auth_token=values.get("COMMQ_TWILIO_AUTH_TOKEN") or None,
    )
