"""`commq worker`: a standalone dispatch loop with graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal

from commq.adapters.store import check_schema
from commq.entrypoints.bootstrap import build
from commq.entrypoints.maintenance import Maintenance
from commq.entrypoints.monitoring import Monitoring
from commq.entrypoints.runtime import settle_garbage_collector
from commq.entrypoints.settings import Settings

log = logging.getLogger("commq.worker")


async def run_worker(settings: Settings, concurrency: int | None = None) -> int:
    """Work until SIGTERM/SIGINT; then stop claiming and finish within the grace period."""
    await asyncio.to_thread(check_schema, settings.database_url)
    container = await build(settings)
    monitoring = Monitoring(container)
    maintenance = Maintenance(container)
    dispatcher = monitoring.dispatcher(concurrency)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.stop)
    log.info("worker started (concurrency %s)", concurrency or settings.concurrency)
    try:
        await monitoring.start(serve_metrics=True)
        maintenance.start()
        settle_garbage_collector()  # start-up is done (see runtime.py)
        return await dispatcher.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await maintenance.stop()
        await monitoring.stop()
        await container.close()
        log.info("worker stopped")
