"""Alert rules: readings, sentences, and the fire / repeat / update / resolve decisions."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from commq.domain.alerts import (
    Alert,
    AlertAction,
    AlertPolicy,
    AlertRule,
    AlertRuleKind,
    AlertStatus,
    HealthFigures,
    combine,
    decide,
    describe,
    measure,
    plan_round,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
FAILED_OVER_10 = AlertRule(AlertRuleKind.FAILED_JOBS, 10)
OLDEST_OVER_300 = AlertRule(AlertRuleKind.OLDEST_PENDING_AGE, 300)
RATE_OVER_20 = AlertRule(AlertRuleKind.FAILURE_RATE, 0.2)
POLICY = AlertPolicy(rules=(FAILED_OVER_10,), cooldown=timedelta(hours=1), min_attempts=10)


def ids() -> itertools.count[int]:
    return itertools.count(1)


def new_id() -> str:
    return "alert-1"


def firing(**fields: object) -> Alert:
    base = Alert(
        id="alert-1",
        rule=AlertRuleKind.FAILED_JOBS,
        business_id=None,
        status=AlertStatus.FIRING,
        threshold=10,
        value=12,
        message="Queue Health Alert: 12 jobs have failed (alerting at more than 10)",
        started_at=T0,
        updated_at=T0,
        last_notified_at=T0,
        notifications=1,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_each_rule_reads_its_own_figure() -> None:
    figures = HealthFigures(None, 12, 450.0, attempts=40, failed_attempts=10)
    assert measure(FAILED_OVER_10, figures, POLICY) == 12.0
    assert measure(OLDEST_OVER_300, figures, POLICY) == 450.0
    assert measure(RATE_OVER_20, figures, POLICY) == 0.25


def test_a_failure_rate_over_too_few_attempts_is_not_measured() -> None:
    figures = HealthFigures(None, attempts=9, failed_attempts=9)
    assert measure(RATE_OVER_20, figures, POLICY) is None
    assert measure(RATE_OVER_20, replace(figures, attempts=10), POLICY) == 0.9


def test_the_failed_jobs_sentence_is_the_seeds_queue_health_alert() -> None:
    assert describe(FAILED_OVER_10, 12, None) == (
        "Queue Health Alert: 12 jobs have failed (alerting at more than 10)"
    )
    assert describe(FAILED_OVER_10, 1, "acme").startswith(
        "Queue Health Alert: 1 job has failed in business acme"
    )
    assert "25.0% of send attempts failed" in describe(RATE_OVER_20, 0.25, None)
    assert "has waited 451 s" in describe(OLDEST_OVER_300, 451.2, None)


def test_a_reading_above_the_threshold_fires_and_notifies() -> None:
    change = decide(FAILED_OVER_10, HealthFigures(None, 11), None, T0, POLICY, new_id)
    assert change is not None
    assert change.action is AlertAction.FIRE and change.notify
    alert = change.alert
    assert (alert.status, alert.value, alert.started_at, alert.notifications) == (
        AlertStatus.FIRING,
        11.0,
        T0,
        1,
    )
    assert alert.message.startswith("Queue Health Alert: 11 jobs have failed")


def test_a_reading_at_the_threshold_does_not_fire() -> None:
    assert decide(FAILED_OVER_10, HealthFigures(None, 10), None, T0, POLICY, new_id) is None


def test_a_firing_alert_within_the_cooldown_is_updated_quietly() -> None:
    later = T0 + timedelta(minutes=59)
    change = decide(FAILED_OVER_10, HealthFigures(None, 30), firing(), later, POLICY, new_id)
    assert change is not None
    assert change.action is AlertAction.UPDATE and not change.notify
    assert (change.alert.value, change.alert.updated_at) == (30.0, later)
    assert change.alert.last_notified_at == T0
    assert "30 jobs have failed" in change.alert.message


def test_an_unchanged_reading_within_the_cooldown_changes_nothing() -> None:
    later = T0 + timedelta(minutes=1)
    assert decide(FAILED_OVER_10, HealthFigures(None, 12), firing(), later, POLICY, new_id) is None


def test_a_new_threshold_is_recorded_on_the_firing_alert() -> None:
    raised = AlertRule(AlertRuleKind.FAILED_JOBS, 11)
    later = T0 + timedelta(minutes=1)
    change = decide(raised, HealthFigures(None, 12), firing(), later, POLICY, new_id)
    assert change is not None and change.action is AlertAction.UPDATE
    assert change.alert.threshold == 11


def test_a_firing_alert_repeats_once_the_cooldown_has_passed() -> None:
    later = T0 + timedelta(hours=1)
    change = decide(FAILED_OVER_10, HealthFigures(None, 30), firing(), later, POLICY, new_id)
    assert change is not None
    assert change.action is AlertAction.REPEAT and change.notify
    assert (change.alert.last_notified_at, change.alert.notifications) == (later, 2)
    assert change.before == firing()


def test_a_firing_alert_never_notified_repeats_at_once() -> None:
    unheard = firing(last_notified_at=None, notifications=0)
    soon = T0 + timedelta(seconds=1)
    change = decide(FAILED_OVER_10, HealthFigures(None, 30), unheard, soon, POLICY, new_id)
    assert change is not None and change.action is AlertAction.REPEAT


def test_a_cleared_condition_resolves_and_notifies() -> None:
    later = T0 + timedelta(minutes=5)
    change = decide(FAILED_OVER_10, HealthFigures(None, 3), firing(), later, POLICY, new_id)
    assert change is not None
    assert change.action is AlertAction.RESOLVE and change.notify
    assert (change.alert.status, change.alert.resolved_at) == (AlertStatus.RESOLVED, later)
    assert change.alert.message.startswith("Resolved: Queue Health Alert: 3 jobs have failed")


def test_an_unmeasurable_failure_rate_neither_fires_nor_resolves() -> None:
    policy = replace(POLICY, rules=(RATE_OVER_20,))
    quiet = HealthFigures(None, attempts=2, failed_attempts=2)
    rate_alert = firing(rule=AlertRuleKind.FAILURE_RATE, threshold=0.2, value=0.5)
    assert decide(RATE_OVER_20, quiet, None, T0, policy, new_id) is None
    assert decide(RATE_OVER_20, quiet, rate_alert, T0, policy, new_id) is None


def test_a_global_round_reads_every_business_together() -> None:
    figures = [combine([HealthFigures("acme", 6), HealthFigures("globex", 6)])]
    changes = plan_round(POLICY, figures, [], T0, new_id)
    assert [(c.action, c.alert.business_id, c.alert.value) for c in changes] == [
        (AlertAction.FIRE, None, 12.0)
    ]


def test_a_per_business_round_alerts_each_business_on_its_own() -> None:
    policy = replace(POLICY, per_business=True)
    figures = [HealthFigures("acme", 11), HealthFigures("globex", 2), HealthFigures("initech", 40)]
    counter = ids()
    changes = plan_round(policy, figures, [], T0, lambda: f"a{next(counter)}")
    assert [(c.alert.business_id, c.alert.id) for c in changes] == [
        ("acme", "a1"),
        ("initech", "a2"),
    ]


def test_a_business_whose_figures_vanished_has_its_alert_resolved() -> None:
    policy = replace(POLICY, per_business=True)
    acme_alert = firing(business_id="acme")
    changes = plan_round(policy, [HealthFigures("globex", 1)], [acme_alert], T0, new_id)
    assert [(c.action, c.alert.business_id, c.alert.value) for c in changes] == [
        (AlertAction.RESOLVE, "acme", 0.0)
    ]


@pytest.mark.parametrize(
    "policy",
    [
        AlertPolicy(rules=(OLDEST_OVER_300,)),
        AlertPolicy(rules=(FAILED_OVER_10,), per_business=True),
    ],
    ids=["rule removed", "scope changed"],
)
def test_an_alert_no_rule_covers_any_more_is_retired(policy: AlertPolicy) -> None:
    changes = plan_round(policy, [], [firing()], T0, new_id)
    assert [(c.action, c.alert.id) for c in changes] == [(AlertAction.RESOLVE, "alert-1")]
    assert changes[0].alert.message.startswith("Resolved: no rule watches this any more")


def test_combining_sums_counts_and_keeps_the_oldest_age() -> None:
    total = combine(
        [
            HealthFigures("acme", 2, 30.0, attempts=10, failed_attempts=1),
            HealthFigures("globex", 3, 90.0, attempts=5, failed_attempts=5),
        ]
    )
    assert total == HealthFigures(None, 5, 90.0, attempts=15, failed_attempts=6)
    assert combine([]) == HealthFigures(None)


def test_the_policy_knows_which_figures_its_rules_need() -> None:
    policy = AlertPolicy(rules=(FAILED_OVER_10, RATE_OVER_20))
    assert policy.needs(AlertRuleKind.FAILURE_RATE)
    assert not policy.needs(AlertRuleKind.OLDEST_PENDING_AGE)
