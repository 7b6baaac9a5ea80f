"""The alert store on every backend: the figures rules read, stored alerts, the round lock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore, make_engine
from commq.adapters.store.sql_alert_store import SqlAlertStore
from commq.domain.alerts import (
    Alert,
    AlertPolicy,
    AlertRule,
    AlertRuleKind,
    AlertStatus,
    HealthFigures,
)

from .support import BUSINESS, OTHER_BUSINESS, claim_one, enqueue, failed, finish, now, succeeded

EVERY_RULE = AlertPolicy(
    rules=(
        AlertRule(AlertRuleKind.FAILED_JOBS, 1),
        AlertRule(AlertRuleKind.OLDEST_PENDING_AGE, 60),
        AlertRule(AlertRuleKind.FAILURE_RATE, 0.5),
    ),
    window=timedelta(minutes=5),
)


@pytest.fixture
def alert_store(store_engine: AsyncEngine) -> SqlAlertStore:
    return SqlAlertStore(store_engine)


def an_alert(**fields: object) -> Alert:
    at = now()
    base = Alert(
        id="0190a0a0-0000-7000-8000-000000000001",
        rule=AlertRuleKind.FAILED_JOBS,
        business_id=BUSINESS,
        status=AlertStatus.FIRING,
        threshold=10,
        value=12,
        message="Queue Health Alert: 12 jobs have failed in business acme",
        started_at=at,
        updated_at=at,
        last_notified_at=at,
        notifications=1,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


async def test_an_empty_queue_has_no_figures(alert_store: SqlAlertStore) -> None:
    reading = await alert_store.health(EVERY_RULE)
    assert reading.figures == ()
    assert abs((reading.at - now()).total_seconds()) < 60


async def test_figures_are_gathered_per_business(
    job_store: SqlJobStore, alert_store: SqlAlertStore
) -> None:
    for _ in range(2):
        await enqueue(job_store)
        await finish(job_store, await claim_one(job_store), failed())
    await enqueue(job_store, business_id=OTHER_BUSINESS)
    await finish(job_store, await claim_one(job_store), succeeded())
    await enqueue(job_store, run_at=now() - timedelta(seconds=120))
    await enqueue(job_store, business_id=OTHER_BUSINESS, run_at=now() + timedelta(hours=1))
    by_business = {f.business_id: f for f in (await alert_store.health(EVERY_RULE)).figures}
    acme, globex = by_business[BUSINESS], by_business[OTHER_BUSINESS]
    assert (acme.failed_jobs, acme.attempts, acme.failed_attempts) == (2, 2, 2)
    assert 119 <= acme.oldest_pending_age_seconds < 180
    assert globex == HealthFigures(OTHER_BUSINESS, 0, 0.0, attempts=1, failed_attempts=0)


async def test_only_the_figures_a_rule_needs_are_gathered(
    job_store: SqlJobStore, alert_store: SqlAlertStore
) -> None:
    await enqueue(job_store)
    await finish(job_store, await claim_one(job_store), failed())
    policy = AlertPolicy(rules=(AlertRule(AlertRuleKind.FAILED_JOBS, 1),))
    assert (await alert_store.health(policy)).figures == (HealthFigures(BUSINESS, failed_jobs=1),)


async def test_attempts_outside_the_window_do_not_count(
    job_store: SqlJobStore, alert_store: SqlAlertStore
) -> None:
    await enqueue(job_store)
    await finish(job_store, await claim_one(job_store), failed())
    policy = replace(EVERY_RULE, window=timedelta(seconds=0.001))
    [figures] = (await alert_store.health(policy)).figures
    assert (figures.failed_jobs, figures.attempts) == (1, 0)


async def test_a_saved_alert_is_listed_and_found_firing(alert_store: SqlAlertStore) -> None:
    alert = an_alert()
    await alert_store.save_alert(alert)
    assert await alert_store.firing_alerts() == [alert]
    assert await alert_store.list_alerts(BUSINESS, timedelta(hours=24)) == [alert]
    assert await alert_store.list_alerts(OTHER_BUSINESS, timedelta(hours=24)) == []
    assert await alert_store.list_alerts(None, timedelta(hours=24)) == [alert]


async def test_saving_again_replaces_the_alert(alert_store: SqlAlertStore) -> None:
    alert = an_alert()
    await alert_store.save_alert(alert)
    resolved = replace(alert, status=AlertStatus.RESOLVED, resolved_at=now(), value=0.0)
    await alert_store.save_alert(resolved)
    assert await alert_store.firing_alerts() == []
    assert await alert_store.list_alerts(BUSINESS, timedelta(hours=24)) == [resolved]


async def test_a_global_alert_is_stored_without_a_business(alert_store: SqlAlertStore) -> None:
    alert = an_alert(business_id=None)
    await alert_store.save_alert(alert)
    assert await alert_store.firing_alerts() == [alert]
    assert await alert_store.list_alerts(BUSINESS, timedelta(hours=24)) == []


async def test_long_resolved_alerts_are_not_listed(alert_store: SqlAlertStore) -> None:
    old = an_alert(status=AlertStatus.RESOLVED, resolved_at=now() - timedelta(days=2))
    await alert_store.save_alert(old)
    assert await alert_store.list_alerts(None, timedelta(hours=24)) == []


async def test_one_rule_and_scope_cannot_fire_twice(alert_store: SqlAlertStore) -> None:
    await alert_store.save_alert(an_alert())
    twin = an_alert(id="0190a0a0-0000-7000-8000-000000000002")
    with pytest.raises(IntegrityError):
        await alert_store.save_alert(twin)


async def test_sqlite_rounds_always_run(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with SqlAlertStore(engine).evaluation_lock() as acquired:
            assert acquired
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_on_postgresql_one_process_holds_the_round_lock(postgres_url: str) -> None:
    engines = [make_engine(postgres_url), make_engine(postgres_url)]
    first, second = (SqlAlertStore(engine) for engine in engines)
    try:
        async with first.evaluation_lock() as held:
            assert held
            async with second.evaluation_lock() as other:
                assert not other
        async with second.evaluation_lock() as after:
            assert after
    finally:
        for engine in engines:
            await engine.dispose()
