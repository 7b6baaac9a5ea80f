"""Bulk actions, the audit trail's listing, and retention (DESIGN §3, /failed/retry, /audit)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from commq.domain.audit import AuditEvent
from commq.domain.errors import InvalidJobError
from commq.domain.listing import JobFilter

#: Most ids one bulk request may name.
MAX_BULK_IDS = 10_000

#: Jobs changed (or deleted) per transaction by bulk actions and retention, so no
#: transaction holds many rows and workers keep claiming between chunks.
CHUNK_SIZE = 1000


@dataclass(frozen=True, slots=True)
class BulkRequest:
    """The jobs a bulk retry or cancel covers: ``where`` and, when given, only ``ids``."""

    where: JobFilter
    ids: tuple[str, ...] | None = None
    #: Only count the jobs; change nothing.
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.ids is not None and not 1 <= len(self.ids) <= MAX_BULK_IDS:
            raise InvalidJobError(f"ids holds 1 to {MAX_BULK_IDS} job ids", "ids")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit events a listing covers. None means "any".

    ``business_id`` None is only set for a platform key that did not narrow.
    """

    business_id: str | None = None
    action: str | None = None
    actor_key_id: str | None = None
    actor_name: str | None = None
    job_id: str | None = None
    #: ``at_from`` <= at < ``at_to``.
    at_from: datetime | None = None
    at_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    """Audit events, newest first, and the cursor of the next page."""

    items: list[AuditEvent] = field(default_factory=list)
    next_cursor: str | None = None


_FILTER_NAMES = {
    "status": "status",
    "channel": "channel",
    "provider": "provider",
    "error_type": "errorType",
    "communication_id": "communicationId",
    "recipient": "recipient",
    "q": "q",
    "created_from": "createdFrom",
    "created_to": "createdTo",
}


def filter_json(request: BulkRequest) -> dict[str, Any]:
    """The request as the audit trail records it: the fields that were set, camelCase."""
    described: dict[str, Any] = {}
    for name, json_name in _FILTER_NAMES.items():
        value = getattr(request.where, name)
        if isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        if value is not None:
            described[json_name] = str(value)
    if request.ids is not None:
        described["ids"] = list(request.ids)
    return described


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` or plain seconds; ValueError for anything else."""
    match = _AGE.match(text.lower())
    if match is None:
        raise ValueError(
            f"{text!r} is not an age: use a number with d, h, m or s (30d, 12h, 90m) or seconds"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0 or seconds > 100 * 365 * 86400:
        raise ValueError(f"{text!r} must be more than 0 and at most 100 years")
    return timedelta(seconds=seconds)
