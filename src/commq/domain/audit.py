"""Audit events and who caused them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from commq.domain.permissions import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind an API key.

    ``business_id`` None is a platform key: it sees every business.
    """

    key_id: str
    name: str
    role: Role
    business_id: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A change an operator made, recorded in the same transaction as the change."""

    action: str
    actor: Principal
    business_id: str | None
    job_id: str | None = None
    filter: dict[str, Any] | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An audit entry as stored, with its id and time."""

    id: str
    at: datetime
    action: str
    actor_key_id: str
    actor_name: str
    role: str
    business_id: str | None
    job_id: str | None
    filter: dict[str, Any] | None
    count: int | None
