"""The composition root: the one place that picks adapters and wires the use cases."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.senders import HostGuard, OutboxSender, SmtpSender, WebhookSender
from commq.adapters.store import (
    LocalWakeup,
    PgWakeup,
    SqlJobStore,
    SqlKeyStore,
    dialect_of,
    make_engine,
)
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.application.keys import KeyService
from commq.application.ports import Sender, Wakeup
from commq.application.queue import QueueService
from commq.domain.jobs import Channel
from commq.domain.retry import RetryPolicy
from commq.entrypoints.settings import Settings, SettingsError


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
    senders: dict[Channel, Sender]
    queue: QueueService
    _closers: list[Sender | PgWakeup] = field(default_factory=list)

    def dispatcher(self, concurrency: int | None = None) -> Dispatcher:
        """A new worker loop over this container's store and senders."""
        s = self.settings
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
            ),
            worker_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        )

    async def process_pass(self, business_id: str | None) -> int:
        """One dispatch pass run by the answering process (process-now)."""
        return await self.dispatcher().drain(business_id)

    async def close(self) -> None:
        """Close senders, the wakeup listener and the database engine."""
        for closer in self._closers:
            await closer.close()
        await self.engine.dispose()


def build_senders(settings: Settings) -> dict[Channel, Sender]:
    """The first provider of each channel's failover list (failover itself comes later)."""
    made: dict[str, Sender] = {}
    senders: dict[Channel, Sender] = {}
    for channel, names in settings.providers.items():
        name = names[0]
        if name not in made:
            made[name] = _make_sender(name, settings)
        senders[channel] = made[name]
    return senders


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
        return WebhookSender(HostGuard(settings.webhook_allowed_hosts))
    raise SettingsError(f"COMMQ_PROVIDERS: unknown provider {name!r}")


async def build(settings: Settings) -> Container:
    """Wire a container for ``settings``; the caller must ``await container.close()``."""
    senders = build_senders(settings)
    engine = make_engine(settings.database_url)
    wakeup: Wakeup
    closers: list[Sender | PgWakeup] = list({id(s): s for s in senders.values()}.values())
    if dialect_of(settings.database_url) == "postgresql":
        pg_wakeup = PgWakeup(settings.database_url)
        await pg_wakeup.start()
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
    return container
