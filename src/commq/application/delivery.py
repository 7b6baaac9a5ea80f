"""Delivery events from providers' callbacks, applied to their jobs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from commq.application.ports import DeliveryStore
from commq.domain.delivery import DeliveryEvent, EventEffect


class DeliveryService:
    """Applies verified provider events: deliveryStatus moves forward, bounces suppress.

    Each event is applied at most once (providers redeliver), so callers may
    pass the same batch again safely.
    """

    def __init__(self, store: DeliveryStore) -> None:
        self._store = store

    async def apply(self, events: Sequence[DeliveryEvent]) -> dict[EventEffect, int]:
        """Apply ``events`` in order; returns how many had each effect."""
        effects: Counter[EventEffect] = Counter()
        for event in events:
            effects[await self._store.apply_delivery_event(event)] += 1
        return {effect: effects[effect] for effect in EventEffect}
