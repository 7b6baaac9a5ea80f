"""Wiring of the provider guards and the delivery-callback verifiers (COMMQ_RATE_LIMITS,
COMMQ_CIRCUIT_*, COMMQ_SENDGRID_WEBHOOK_PUBLIC_KEY, COMMQ_TWILIO_AUTH_TOKEN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.callbacks import SendGridEventWebhook, TwilioStatusCallback
from commq.adapters.store.held_jobs import SqlHeldJobStore
from commq.adapters.store.sql_provider_store import SqlProviderStore
from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.application.circuits import CircuitBreaker
from commq.application.failover import Guards
from commq.application.ratelimits import SendSlots
from commq.domain.circuit import CircuitPolicy
from commq.entrypoints.settings import Settings, SettingsError


def build_guards(
    settings: Settings, engine: AsyncEngine, worker_id: str, providers: Sequence[str]
) -> Guards:
    """Circuits, send slots, held-job changes and suppressions for one worker loop.

    A probe that has not answered within a lease is presumed lost.
    """
    r = settings.reliability
    policy = CircuitPolicy(
        threshold=r.circuit_threshold,
        cooldown=timedelta(seconds=r.circuit_cooldown),
        probe_timeout=timedelta(seconds=settings.lease_seconds),
    )
    store = SqlProviderStore(engine)
    return Guards(
        circuits=CircuitBreaker(store, policy, worker_id, providers),
        slots=SendSlots(store, r.rate_limits),
        held=SqlHeldJobStore(engine),
        suppressions=SqlSuppressionStore(engine),
    )


@dataclass(frozen=True)
class CallbackVerifiers:
    """Each provider's callback verifier; None where its key is not configured."""

    sendgrid: SendGridEventWebhook | None = None
    twilio: TwilioStatusCallback | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackVerifiers:
        """Build them; SettingsError names a key that cannot be read."""
        r = settings.reliability
        try:
            sendgrid = (
                None
                if r.sendgrid_webhook_public_key is None
                else SendGridEventWebhook(r.sendgrid_webhook_public_key)
            )
        except ValueError as exc:
            raise SettingsError(f"COMMQ_SENDGRID_WEBHOOK_PUBLIC_KEY: {exc}") from None
        twilio = None if r.twilio_auth_token is None else TwilioStatusCallback(r.twilio_auth_token)
        return cls(sendgrid, twilio)
