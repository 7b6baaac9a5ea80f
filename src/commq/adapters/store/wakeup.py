"""Wakeups that tell idle workers work arrived. Polling stays the fallback.

LocalWakeup reaches workers in this process (embedded mode). PgWakeup also
reaches every other process through PostgreSQL ``LISTEN/NOTIFY``: a dedicated
connection listens, reconnects with backoff when it drops, and a lost
notification only costs a poll interval, never a job. Enqueues need no NOTIFY of
their own: ``SqlJobStore.enqueue`` sends it in its INSERT (job_inserts.py), so
``PgWakeup.jobs_enqueued`` only wakes this process's workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from commq.adapters.store.engine import dead_peer_detection, driver_url

#: The NOTIFY channel every commq process listens on.
CHANNEL = "commq_jobs"

#: application_name of the listening connection, as pg_stat_activity shows it.
LISTENER_NAME = "commq-listen"

_log = logging.getLogger(__name__)


class LocalWakeup:
    """Wakes the workers waiting in this process."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        """Wake every current waiter (and the next one, if none is waiting)."""
        self._event.set()

    async def notify(self) -> None:
        """Wake every waiting worker of this process."""
        self.wake()

    async def jobs_enqueued(self) -> None:
        """Jobs were stored: wake every waiting worker of this process."""
        self.wake()

    async def wait(self, timeout: float) -> None:
        """Return when woken, or after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self._event.wait()
        except TimeoutError:
            return
        # Every waiter woken by this set() has been released already.
        self._event.clear()


class PgWakeup:
    """Wakes workers in every process pointed at one PostgreSQL database."""

    def __init__(
        self,
        database_url: str,
        *,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        probe_interval: float = 30.0,
    ) -> None:
        url = driver_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._tcp = dead_peer_detection(url)
        self._local = LocalWakeup()
        self._backoff = (backoff, max_backoff)
        self._probe_interval = probe_interval
        self._listener: asyncio.Task[None] | None = None
        self._sender: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._send_lock = asyncio.Lock()
        self._listening = asyncio.Event()

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up right now."""
        return self._listening.is_set()

    async def start(self) -> None:
        """Start listening in the background; returns at once."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name=LISTENER_NAME)

    async def close(self) -> None:
        """Stop listening and close both connections."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        async with self._send_lock:
            await self._drop_sender()

    async def notify(self) -> None:
        """Wake this process's workers, then every other process's, through NOTIFY."""
        self._local.wake()
        async with self._send_lock:
            try:
                if self._sender is None or self._sender.closed:
                    self._sender = await self._connect("commq-notify")
                await self._sender.execute(f"NOTIFY {CHANNEL}")
            except (psycopg.Error, OSError) as error:
                # Other processes still poll; the next notify reconnects.
                _log.warning("NOTIFY %s failed: %s", CHANNEL, error)
                await self._drop_sender()

    async def jobs_enqueued(self) -> None:
        """Wake this process's workers after ``SqlJobStore.enqueue`` stored jobs.

        The store's INSERT has NOTIFYed every listening process already (in the
        same statement, delivered at commit), this one's listener included; waking
        the local workers here only saves them the trip through the server.
        """
        self._local.wake()

    async def wait(self, timeout: float) -> None:
        """Return when woken (by any process), or after ``timeout`` seconds.

        The first wait starts the listener: a process without a worker (``commq serve
        --no-worker``) never listens, so it is not sent every enqueue's NOTIFY.
        """
        await self.start()
        await self._local.wait(timeout)

    async def _connect(self, name: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name=name,
            connect_timeout=10,
            **self._tcp,
        )

    async def _drop_sender(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._sender.close()
            self._sender = None

    async def _listen(self) -> None:
        delay, max_delay = self._backoff
        while True:
            try:
                async with await self._connect(LISTENER_NAME) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    delay = self._backoff[0]
                    # Work may have arrived while nobody was listening.
                    self._local.wake()
                    await self._relay(conn)
            except Exception as error:  # whatever broke, polling covers and we retry
                _log.warning("LISTEN %s lost (%s); retrying in %.1fs", CHANNEL, error, delay)
            finally:
                self._listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    async def _relay(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        while True:
            async for _ in conn.notifies(timeout=self._probe_interval):
                self._local.wake()
            # A network that drops silently shows up here rather than never.
            async with asyncio.timeout(10):
                await conn.execute("SELECT 1")
