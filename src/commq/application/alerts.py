"""Alert evaluation rounds and the alert list, on top of the AlertStore port."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from commq.application.ports import AlertNotifier, AlertStore
from commq.application.scope import read_scope, require
from commq.domain.alerts import (
    Alert,
    AlertAction,
    AlertChange,
    AlertPolicy,
    combine,
    plan_round,
)
from commq.domain.audit import Principal
from commq.domain.jobs import new_job_id
from commq.domain.permissions import Permission

log = logging.getLogger("commq.alerts")

#: How long a resolved alert stays in the alert list.
RESOLVED_VISIBLE_FOR = timedelta(hours=24)


class AlertService:
    """Evaluates the alert rules and lists alerts to authorised callers.

    A round runs under the store's evaluation lock, so with many processes on
    one database only one evaluates (and notifies) at a time; the others skip
    the round. Each change is stored before its notification goes out, and a
    notification that does not get through is undone in the store, so the next
    round tries again instead of the alert going unheard.
    """

    def __init__(
        self,
        store: AlertStore,
        notifier: AlertNotifier | None,
        policy: AlertPolicy,
        new_id: Callable[[], str] = new_job_id,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._policy = policy
        self._new_id = new_id

    @property
    def enabled(self) -> bool:
        """Whether any rule is configured."""
        return bool(self._policy.rules)

    async def evaluate(self) -> list[AlertChange] | None:
        """One round: the changes made, or None when another process holds the lock."""
        async with self._store.evaluation_lock() as acquired:
            if not acquired:
                return None
            reading = await self._store.health(self._policy)
            firing = await self._store.firing_alerts()
            figures = reading.figures if self._policy.per_business else (combine(reading.figures),)
            changes = plan_round(self._policy, figures, firing, reading.at, self._new_id)
            for change in changes:
                await self._apply(change)
            return changes

    async def list_alerts(
        self, principal: Principal, business_id: str | None = None, limit: int | None = None
    ) -> list[Alert]:
        """Firing and recently resolved alerts the caller may see, newest first (the
        first ``limit`` of them, if given).

        A business key sees only its business's alerts: a global alert sums up
        every tenant's jobs, which is not a business key's to know.
        """
        require(principal, Permission.VIEW_STATS)
        scope = read_scope(principal, business_id)
        # Few alerts fire or resolve in a day (the store lists at most 1,000): cut here.
        return (await self._store.list_alerts(scope, RESOLVED_VISIBLE_FOR))[:limit]

    async def _apply(self, change: AlertChange) -> None:
        if change.notify and self._notifier is None:
            # Without a webhook the alert is only listed; nothing claims it was sent.
            await self._store.save_alert(_unnotified(change))
            return
        await self._store.save_alert(change.alert)
        if self._notifier is None or not change.notify:
            return
        if await self._notifier.notify(change.alert):
            return
        log.warning("alert %s: notification did not get through", change.alert.id)
        if change.action is not AlertAction.RESOLVE:
            await self._store.save_alert(_unnotified(change))


def _unnotified(change: AlertChange) -> Alert:
    """The alert as stored, minus the notification that failed."""
    before = change.before
    return replace(
        change.alert,
        last_notified_at=None if before is None else before.last_notified_at,
        notifications=0 if before is None else before.notifications,
    )
