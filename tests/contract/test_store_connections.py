"""Pooled PostgreSQL connections that the server closed are never handed out; single
statements borrow the engine's standing connection instead of the pool's, and the
hottest ones run on its driver."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, timedelta

import psycopg
import pytest
from sqlalchemy import Integer, event, func, literal, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import PgWakeup, SqlJobStore, make_engine
from commq.adapters.store.driver_calls import DriverStatement, fetch_each
from commq.adapters.store.engine import Transactions
from commq.adapters.store.sql_provider_store import SqlProviderStore
from commq.adapters.store.tables import jobs
from commq.domain.jobs import JobStatus
from commq.domain.listing import JobFilter, ListOrder, PageRequest

from .support import BUSINESS, enqueue, new_job, sqlalchemy_calls


def _terminate_other_backends(url: str) -> int:
    """What a database restart does to a pool: the server ends every connection."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


async def test_connections_the_server_closed_are_replaced_without_an_error(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    try:
        store = SqlJobStore(engine)
        # Several pooled connections, all idle once these finish.
        await asyncio.gather(*(enqueue(store) for _ in range(5)))
        assert _terminate_other_backends(postgres_url) >= 1
        await asyncio.sleep(0.2)  # the server's goodbye reaches the idle sockets

        jobs = await asyncio.gather(*(enqueue(store) for _ in range(5)))
        found = [await store.find_job(job.id, None) for job in jobs]
        assert [job.id for job in found if job is not None] == [job.id for job in jobs]
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM jobs"))).scalar() == 10
    finally:
        await engine.dispose()


async def _backend_of(tx: Transactions, statement: str = "SELECT pg_backend_pid()") -> int:
    async with tx.read_one() as conn:
        return int((await conn.execute(text(statement))).scalar_one())


def _alive(url: str, pid: int) -> bool:
    """Whether backend ``pid`` still runs a second after (a closed one exits in ms)."""
    deadline = time.monotonic() + 1.0
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as admin:
        while time.monotonic() < deadline:
            query = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
            row = admin.execute(query, [pid]).fetchone()
            if row is not None and row[0] == 0:
                return False
            time.sleep(0.02)
    return True


async def test_single_statements_share_one_standing_connection(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        tx = Transactions(engine)
        one_after_another = {await _backend_of(tx) for _ in range(5)}
        # Two at once: the second does not wait for the first, it takes a pooled one.
        at_once = await asyncio.gather(
            _backend_of(tx, "SELECT pg_backend_pid() FROM pg_sleep(0.1)"), _backend_of(tx)
        )
    finally:
        await engine.dispose()
    assert len(one_after_another) == 1
    assert len(set(at_once)) == 2
    assert one_after_another & set(at_once)
    # Disposing of the engine closes it like the pooled ones.
    [standing] = one_after_another
    assert not _alive(postgres_url, standing)


async def test_a_failed_statement_leaves_the_next_one_a_working_connection(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    try:
        tx = Transactions(engine)
        before = await _backend_of(tx)
        with pytest.raises(DBAPIError):
            await _backend_of(tx, "SELECT 1 / 0")
        after = await _backend_of(tx)
    finally:
        await engine.dispose()
    assert after != before
    assert not _alive(postgres_url, before)


async def test_on_sqlite_one_job_enqueues_borrow_the_standing_connection(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *_: checkouts.append(1))
    try:
        store = SqlJobStore(engine)
        await enqueue(store)  # opens it
        opened = len(checkouts)
        jobs = [await enqueue(store) for _ in range(5)]
        assert len(checkouts) == opened  # no trip through the pool, and its reset, per job
        assert all([await store.find_job(job.id, None) for job in jobs])
        # A statement the database refuses leaves the next one a working connection.
        with pytest.raises(IntegrityError):
            await store.enqueue([new_job(recipient=None)])
        assert await store.find_job((await enqueue(store)).id, None)
    finally:
        await engine.dispose()


async def test_claims_run_on_the_standing_connections_driver(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    await enqueue(job_store)
    await job_store.claim_to_send("w", 10, timedelta(seconds=30))  # opens it
    jobs = [await enqueue(job_store) for _ in range(3)]
    events = ("checkout", "begin", "before_cursor_execute")
    with sqlalchemy_calls(store_engine, events) as through_sqlalchemy:
        claimed = await job_store.claim_to_send("w", 10, timedelta(seconds=30))
    # One statement of its own on the driver: on SQLite one trip to aiosqlite's thread,
    # where SQLAlchemy's checkout, BEGIN, cursor calls and COMMIT made nine.
    assert through_sqlalchemy == []
    assert sorted(job.id for job in claimed.jobs) == sorted(job.id for job in jobs)
    assert all(job.status is JobStatus.PROCESSING and job.lease_token for job in claimed.jobs)


async def test_postgresql_sessions_run_in_utc_and_keep_the_urls_options(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        name = admin.execute("SELECT current_database()").fetchone()
        assert name is not None
        admin.execute(f"ALTER DATABASE \"{name[0]}\" SET timezone = 'America/New_York'")
    engine = make_engine(f"{postgres_url}?options=-c%20statement_timeout%3D7000")
    try:
        async with engine.connect() as conn:
            zone, timeout = (
                await conn.exec_driver_sql(
                    "SELECT current_setting('TimeZone'), current_setting('statement_timeout')"
                )
            ).one()
        store = SqlJobStore(engine)
        await enqueue(store)
        [job] = (await store.claim_to_send("w", 1, timedelta(seconds=30))).jobs
    finally:
        await engine.dispose()
    assert (zone, timeout) == ("UTC", "7s")
    # As psycopg reads them in a UTC session: no zone of the server's left to convert.
    assert job.run_at.tzinfo is UTC and job.started_at is not None
    assert job.started_at.tzinfo is UTC


async def test_stats_lists_and_circuits_are_read_on_the_driver(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    first, second = await enqueue(job_store), await enqueue(job_store)
    providers = SqlProviderStore(store_engine)
    where = JobFilter(business_id=BUSINESS, status=JobStatus.PENDING)
    with sqlalchemy_calls(store_engine) as through_sqlalchemy:
        everything = await job_store.stats(None)
        one_business = await job_store.stats(BUSINESS)
        reading = await providers.read_circuits()
        page = await job_store.list_jobs(where, PageRequest(ListOrder.DUE, limit=1))
        rest = await job_store.list_jobs(where, PageRequest(ListOrder.DUE, 1, page.next_cursor))
    # Compiled once per scope; SQLAlchemy's execute cost milliseconds of Python each.
    assert through_sqlalchemy == []
    assert everything.pending == one_business.pending == 2
    assert [job.id for job in (*page.items, *rest.items)] == [first.id, second.id]
    assert reading.circuits == [] and reading.now.tzinfo is UTC


async def test_statements_fetched_together_answer_in_order_and_fail_as_sqlalchemys(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    one = DriverStatement.compile(select(literal(1, Integer()).label("n")), dialect)
    rows = DriverStatement.compile(select(jobs.c.id).order_by(jobs.c.id), dialect)
    broken = DriverStatement.compile(select(func.nonexistent_function()), dialect)
    store = SqlJobStore(engine)
    made = sorted([(await enqueue(store)).id, (await enqueue(store)).id])
    tx = Transactions(engine)
    try:
        async with tx.on_driver() as conn:
            first, second, third = await fetch_each(conn, [(one, {}), (rows, {}), (one, {})])
        with pytest.raises(DBAPIError):
            async with tx.on_driver() as conn:
                await fetch_each(conn, [(one, {}), (broken, {}), (one, {})])
        async with tx.on_driver() as conn:  # the next caller gets a working connection
            [again] = await fetch_each(conn, [(one, {})])
    finally:
        await engine.dispose()
    assert [list(r) for r in first] == [[1]] == [list(r) for r in third]
    assert [row[0] for row in second] == made
    assert [list(r) for r in again] == [[1]]


@pytest.mark.parametrize(
    ("query", "idle"),
    [("", "30"), ("?keepalives_idle=5", "5")],
    ids=["defaults", "the URL's own"],
)
async def test_postgresql_connections_notice_a_server_that_vanished(
    postgres_url: str, query: str, idle: str
) -> None:
    # TCP keepalives and a user timeout: a partition that never closes the socket ends a
    # worker's hanging statement in about a minute. Settings in the URL win.
    engine = make_engine(postgres_url + query)
    wakeup = PgWakeup(postgres_url + query)
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pooled = raw.driver_connection.info.get_parameters()  # type: ignore[union-attr]
        listening = await wakeup._connect("commq-test")
        async with listening:
            direct = listening.info.get_parameters()
    finally:
        await engine.dispose()
    for params in (pooled, direct):
        assert params["keepalives"] == "1" and params["keepalives_idle"] == idle
        assert (params["keepalives_interval"], params["keepalives_count"]) == ("10", "3")
        assert params["tcp_user_timeout"] == "60000"
