"""Alert rules and what they decide, given the queue's health figures and stored alerts.

One evaluation round measures each rule over each scope (every business
together, or each business on its own), compares the reading with the alert
already firing for that rule and scope, and returns the changes to make:
fire (and notify), repeat the notification once the cool-down has passed,
update the reading quietly, or resolve (and notify). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum


class AlertRuleKind(StrEnum):
    """What a rule watches."""

    #: Failed jobs waiting for an operator; fires above the threshold (a count).
    FAILED_JOBS = "failedJobs"
    #: How long the oldest due pending job has waited; fires above the threshold (seconds).
    OLDEST_PENDING_AGE = "oldestPendingAge"
    #: Share of send attempts that failed within the window; fires above the threshold (0 to 1).
    FAILURE_RATE = "failureRate"


class AlertStatus(StrEnum):
    """Where an alert is in its life."""

    #: The rule's condition holds.
    FIRING = "firing"
    #: The condition cleared; the alert is kept for the record.
    RESOLVED = "resolved"


class AlertAction(StrEnum):
    """What one round does to one alert."""

    #: The condition started to hold: store a new alert and notify.
    FIRE = "fire"
    #: Still firing and the cool-down has passed (or no notice got through yet): notify again.
    REPEAT = "repeat"
    #: Still firing within the cool-down: store the new reading, stay quiet.
    UPDATE = "update"
    #: The condition cleared: mark the alert resolved and notify.
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One condition: the reading of ``kind`` above ``threshold``."""

    kind: AlertRuleKind
    threshold: float


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """The configured rules and how they are applied."""

    rules: tuple[AlertRule, ...] = ()
    #: True: each business is measured (and alerted on) on its own; False: all together.
    per_business: bool = False
    #: Least time between two notifications of one firing alert.
    cooldown: timedelta = timedelta(hours=1)
    #: How far back the failure rate looks.
    window: timedelta = timedelta(minutes=15)
    #: Fewer finished attempts than this in the window: the failure rate is not measured.
    min_attempts: int = 10

    def needs(self, kind: AlertRuleKind) -> bool:
        """Whether any rule watches ``kind`` (so its figures must be gathered)."""
        return any(rule.kind is kind for rule in self.rules)


@dataclass(frozen=True, slots=True)
class HealthFigures:
    """The figures the rules read, for one business (or all, ``business_id`` None)."""

    business_id: str | None
    failed_jobs: int = 0
    oldest_pending_age_seconds: float = 0.0
    #: Attempts that finished within the policy's window, and how many of them failed.
    attempts: int = 0
    failed_attempts: int = 0


@dataclass(frozen=True, slots=True)
class HealthReading:
    """The figures of every business that has any, read at one moment of the database's clock."""

    at: datetime
    figures: tuple[HealthFigures, ...] = ()


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: a rule's condition holding for a scope, from start to resolution."""

    id: str
    rule: AlertRuleKind
    business_id: str | None
    status: AlertStatus
    threshold: float
    value: float
    message: str
    started_at: datetime
    updated_at: datetime
    last_notified_at: datetime | None = None
    resolved_at: datetime | None = None
    #: Notifications that got through.
    notifications: int = 0


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change a round makes: the alert as it must be stored, and whether to notify."""

    action: AlertAction
    alert: Alert
    #: The alert as it was stored before (None for FIRE), to undo a failed notification.
    before: Alert | None = field(default=None)

    @property
    def notify(self) -> bool:
        """Whether the webhook hears of this change."""
        return self.action is not AlertAction.UPDATE


def measure(rule: AlertRule, figures: HealthFigures, policy: AlertPolicy) -> float | None:
    """The rule's reading, or None when it cannot be measured (too few attempts)."""
    if rule.kind is AlertRuleKind.FAILED_JOBS:
        return float(figures.failed_jobs)
    if rule.kind is AlertRuleKind.OLDEST_PENDING_AGE:
        return figures.oldest_pending_age_seconds
    if figures.attempts < max(policy.min_attempts, 1):
        return None
    return figures.failed_attempts / figures.attempts


def describe(rule: AlertRule, value: float, business_id: str | None) -> str:
    """The human sentence for a reading, e.g. ``Queue Health Alert: 12 jobs have failed``."""
    if rule.kind is AlertRuleKind.FAILED_JOBS:
        count = round(value)
        what = f"{count} job{' has' if count == 1 else 's have'} failed"
        limit = f"more than {rule.threshold:g}"
    elif rule.kind is AlertRuleKind.OLDEST_PENDING_AGE:
        what = f"the oldest due job has waited {value:.0f} s"
        limit = f"more than {rule.threshold:g} s"
    else:
        what = f"{value:.1%} of send attempts failed"
        limit = f"more than {rule.threshold:.1%}"
    where = f" in business {business_id}" if business_id is not None else ""
    return f"Queue Health Alert: {what}{where} (alerting at {limit})"


def decide(
    rule: AlertRule,
    figures: HealthFigures,
    current: Alert | None,
    now: datetime,
    policy: AlertPolicy,
    new_id: Callable[[], str],
) -> AlertChange | None:
    """The change one rule makes for one scope this round, or None.

    An unmeasurable reading changes nothing: a failure rate with no traffic
    neither fires nor resolves an alert.
    """
    value = measure(rule, figures, policy)
    if value is None:
        return None
    holds = value > rule.threshold
    if current is None:
        return _fire(rule, figures.business_id, value, now, new_id()) if holds else None
    if not holds:
        return _resolve(rule, current, value, now)
    message = describe(rule, value, current.business_id)
    kept = replace(current, threshold=rule.threshold, value=value, message=message, updated_at=now)
    if current.last_notified_at is None or now - current.last_notified_at >= policy.cooldown:
        notified = replace(kept, last_notified_at=now, notifications=current.notifications + 1)
        return AlertChange(AlertAction.REPEAT, notified, current)
    if (value, rule.threshold) == (current.value, current.threshold):
        return None
    return AlertChange(AlertAction.UPDATE, kept, current)


def _fire(
    rule: AlertRule, business_id: str | None, value: float, now: datetime, alert_id: str
) -> AlertChange:
    alert = Alert(
        id=alert_id,
        rule=rule.kind,
        business_id=business_id,
        status=AlertStatus.FIRING,
        threshold=rule.threshold,
        value=value,
        message=describe(rule, value, business_id),
        started_at=now,
        updated_at=now,
        last_notified_at=now,
        notifications=1,
    )
    return AlertChange(AlertAction.FIRE, alert)


def _resolve(rule: AlertRule, current: Alert, value: float, now: datetime) -> AlertChange:
    message = "Resolved: " + describe(rule, value, current.business_id)
    resolved = replace(
        current,
        status=AlertStatus.RESOLVED,
        threshold=rule.threshold,
        value=value,
        message=message,
        updated_at=now,
        resolved_at=now,
    )
    return AlertChange(AlertAction.RESOLVE, resolved, current)


def plan_round(
    policy: AlertPolicy,
    figures: Sequence[HealthFigures],
    firing: Iterable[Alert],
    now: datetime,
    new_id: Callable[[], str],
) -> list[AlertChange]:
    """Every change of one round, over every rule and scope.

    A firing alert whose scope has no figures any more (a business whose jobs
    are all gone) is measured against zero figures, so it resolves; one that
    no configured rule and scope covers any more is resolved as retired.
    """
    by_scope = {f.business_id: f for f in figures}
    open_alerts = {(a.rule, a.business_id): a for a in firing}
    scopes: set[str | None] = {None}
    if policy.per_business:
        scopes = (set(by_scope) | {business_id for _, business_id in open_alerts}) - {None}
    changes = []
    for rule in policy.rules:
        for scope in sorted(scopes, key=lambda s: s or ""):
            current = open_alerts.pop((rule.kind, scope), None)
            scoped = by_scope.get(scope, HealthFigures(scope))
            change = decide(rule, scoped, current, now, policy, new_id)
            if change is not None:
                changes.append(change)
    changes += [_retire(alert, now) for alert in open_alerts.values()]
    return changes


def _retire(current: Alert, now: datetime) -> AlertChange:
    message = f"Resolved: no rule watches this any more ({current.message})"
    resolved = replace(
        current, status=AlertStatus.RESOLVED, message=message, updated_at=now, resolved_at=now
    )
    return AlertChange(AlertAction.RESOLVE, resolved, current)


def combine(figures: Iterable[HealthFigures]) -> HealthFigures:
    """The figures of every business together."""
    items = list(figures)
    return HealthFigures(
        business_id=None,
        failed_jobs=sum(f.failed_jobs for f in items),
        oldest_pending_age_seconds=max((f.oldest_pending_age_seconds for f in items), default=0.0),
        attempts=sum(f.attempts for f in items),
        failed_attempts=sum(f.failed_attempts for f in items),
    )
