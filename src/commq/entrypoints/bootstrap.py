"""The composition root: the one place that picks adapters and wires the use cases."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.metrics import PrometheusMetrics
from commq.adapters.senders import (
    HostGuard,
    OutboxSender,
    SendGridSender,
    SmtpSender,
    TwilioSender,
    WebhookSender,
)
from commq.adapters.senders.webhook_signing import parse_secrets
from commq.adapters.store import (
    LocalWakeup,
    PgWakeup,
    SqlJobStore,
    SqlKeyStore,
    dialect_of,
    make_engine,
)
from commq.adapters.store.sql_delivery_store import SqlDeliveryStore
from commq.adapters.store.sql_operations_store import SqlOperationsStore
from commq.adapters.store.sql_provider_store import SqlProviderStore
from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.application.circuits import circuit_snapshot
from commq.application.delivery import DeliveryService
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.application.failover import Guards
from commq.application.keys import KeyService
from commq.application.operations import OperationsService
from commq.application.ports import Sender, Wakeup
from commq.application.queue import QueueService
from commq.application.retention import Retention
from commq.application.suppressions import SuppressionService
from commq.domain.jobs import Channel
from commq.domain.retry import RetryPolicy
from commq.entrypoints.reliability import CallbackVerifiers, build_guards
from commq.entrypoints.settings import Settings, SettingsError


def new_worker_id() -> str:
    """A worker id that names its host and process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Container:
    """Everything a process needs, built once and closed once."""

    settings: Settings
    engine: AsyncEngine
    jobs: SqlJobStore
    keys: KeyService
    wakeup: Wakeup
    #: Each channel's providers in failover order.
    senders: dict[Channel, list[Sender]]
    queue: QueueService
    _closers: list[Sender | PgWakeup] = field(default_factory=list)
    #: This process's Prometheus registry and the dispatchers' observer.
    metrics: PrometheusMetrics = field(default_factory=PrometheusMetrics)
    #: Bulk actions, export, audit trail, history (set by build()).
    operations: OperationsService = field(init=False)
    #: Retention and counter compaction (set by build()).
    retention: Retention = field(init=False)

    def dispatcher(
        self, concurrency: int | None = None, worker_id: str | None = None
    ) -> Dispatcher:
        """A new worker loop over this container's store and senders."""
        s = self.settings
        worker = worker_id or new_worker_id()
        return Dispatcher(
            store=self.jobs,
            senders=self.senders,
            wakeup=self.wakeup,
            clock=SystemClock(),
            policy=RetryPolicy(
                timedelta(seconds=s.retry_backoff_base), timedelta(seconds=s.retry_backoff_max)
            ),
            settings=DispatchSettings(
                concurrency=concurrency or s.concurrency,
                lease=timedelta(seconds=s.lease_seconds),
                poll_interval=s.poll_interval,
                grace=s.shutdown_grace,
                overlap_claims=dialect_of(s.database_url) == "postgresql",
            ),
            worker_id=worker,
            observer=self.metrics,
            guards=self.guards(worker),
        )

    def guards(self, worker_id: str) -> Guards:
        """Circuits, send slots, held-job changes and suppressions for one worker loop."""
        return build_guards(self.settings, self.engine, worker_id, self.provider_names)

    @property
    def provider_names(self) -> list[str]:
        """Every configured provider, in the order COMMQ_PROVIDERS names them."""
        names = (s.name for group in self.senders.values() for s in group)
        return list(dict.fromkeys(names))

    async def circuit_snapshot(self, business_id: str | None) -> dict[str, dict[str, Any]]:
        """The providers' circuits for /stats and /metrics: ``{"sendgrid": {"state": …}}``."""
        return await circuit_snapshot(
            SqlProviderStore(self.engine), self.provider_names, business_id
        )

    @cached_property
    def suppressions(self) -> SuppressionService:
        """The suppression list use cases."""
        return SuppressionService(SqlSuppressionStore(self.engine))

    @cached_property
    def deliveries(self) -> DeliveryService:
        """Applies verified delivery events."""
        return DeliveryService(SqlDeliveryStore(self.engine))

    @cached_property
    def callbacks(self) -> CallbackVerifiers:
        """The verifiers of providers' delivery-status callbacks."""
        return CallbackVerifiers.from_settings(self.settings)

    async def process_pass(self, business_id: str | None) -> int:
        """One dispatch pass run by the answering process (process-now)."""
        return await self.dispatcher().drain(business_id)

    async def close(self) -> None:
        """Close senders, the wakeup listener and the database engine."""
        for closer in self._closers:
            await closer.close()
        await self.engine.dispose()


def build_senders(settings: Settings) -> dict[Channel, list[Sender]]:
    """Each channel's providers in failover order; one sender per provider, shared."""
    made: dict[str, Sender] = {}
    for names in settings.providers.values():
        for name in names:
            if name not in made:
                made[name] = _make_sender(name, settings)
    return {channel: [made[n] for n in names] for channel, names in settings.providers.items()}


def _make_sender(name: str, settings: Settings) -> Sender:
    try:
        return _construct_sender(name, settings)
    except ValueError as exc:
        raise SettingsError(f"provider {name}: {exc}") from None


def _construct_sender(name: str, settings: Settings) -> Sender:
    if name == "outbox":
        return OutboxSender(settings.outbox_dir, settings.email_from)
    if name == "smtp":
        return SmtpSender(settings.smtp_url, settings.email_from)
    if name == "webhook":
        secrets = parse_secrets(settings.provider_settings.webhook_secrets)
        return WebhookSender(HostGuard(settings.webhook_allowed_hosts), secrets=secrets)
    if name == "sendgrid":
        return _sendgrid(settings)
    if name == "twilio":
        return _twilio(settings)
    # Each further provider is one branch here; COMMQ_PROVIDERS may then name it
    # anywhere in a channel's failover list.
    raise SettingsError(f"COMMQ_PROVIDERS: unknown provider {name!r}")


def _sendgrid(settings: Settings) -> Sender:
    p = settings.provider_settings
    if not p.sendgrid_api_key:
        raise SettingsError("provider sendgrid needs COMMQ_SENDGRID_API_KEY")
    return SendGridSender(
        p.sendgrid_api_key, email_from=settings.email_from, base_url=p.sendgrid_base_url
    )


def _twilio(settings: Settings) -> Sender:
    p = settings.provider_settings
    if not (p.twilio_account_sid and p.twilio_auth_token and p.twilio_from):
        raise SettingsError(
            "provider twilio needs COMMQ_TWILIO_ACCOUNT_SID, COMMQ_TWILIO_AUTH_TOKEN "
            "and COMMQ_TWILIO_FROM"
        )
    return TwilioSender(
        p.twilio_account_sid, p.twilio_auth_token, p.twilio_from, base_url=p.twilio_base_url
    )


async def build(settings: Settings) -> Container:
    """Wire a container for ``settings``; the caller must ``await container.close()``."""
    senders = build_senders(settings)
    CallbackVerifiers.from_settings(settings)  # a bad key stops the start, not a callback
    engine = make_engine(settings.database_url)
    wakeup: Wakeup
    closers: list[Sender | PgWakeup] = list(
        {id(s): s for group in senders.values() for s in group}.values()
    )
    if dialect_of(settings.database_url) == "postgresql":
        # It starts listening when a worker first waits on it (PgWakeup.wait).
        pg_wakeup = PgWakeup(settings.database_url)
        closers.append(pg_wakeup)
        wakeup = pg_wakeup
    else:
        wakeup = LocalWakeup()
    jobs = SqlJobStore(engine)
    container = Container(
        settings=settings,
        engine=engine,
        jobs=jobs,
        keys=KeyService(SqlKeyStore(engine)),
        wakeup=wakeup,
        senders=senders,
        queue=None,  # type: ignore[arg-type]  # set just below: it needs the container
        _closers=closers,
    )
    container.queue = QueueService(jobs, wakeup, container.process_pass)
    operations = SqlOperationsStore(engine)
    container.operations = OperationsService(jobs, operations, operations, operations, wakeup)
    container.retention = Retention(operations)
    return container
