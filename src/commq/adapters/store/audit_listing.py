"""The audit trail, newest first, in keyset pages.

Event ids are UUIDv7, so id order is time order. A cursor is urlsafe base64 of
JSON ``{"audit": "<id of the last event>"}``; anything else is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.engine import RowMapping

from commq.adapters.store.tables import audit_events
from commq.domain.audit import AuditEvent
from commq.domain.errors import InvalidCursorError
from commq.domain.operations import AuditFilter

_a = audit_events.c
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def audit_query(where: AuditFilter, limit: int, cursor: str | None) -> Select[Any]:
    """One page plus one row, to tell whether another page follows."""
    query = select(audit_events).where(*_conditions(where))
    if cursor is not None:
        query = query.where(_a.id < decode_audit_cursor(cursor))
    return query.order_by(_a.id.desc()).limit(limit + 1)


def _conditions(where: AuditFilter) -> list[ColumnElement[bool]]:
    equal = {
        _a.business_id: where.business_id,
        _a.action: where.action,
        _a.actor_key_id: where.actor_key_id,
        _a.actor_name: where.actor_name,
        _a.job_id: where.job_id,
    }
    conditions = [column == value for column, value in equal.items() if value is not None]
    if where.at_from is not None:
        conditions.append(_a.at >= where.at_from)
    if where.at_to is not None:
        conditions.append(_a.at < where.at_to)
    return conditions


def encode_audit_cursor(event_id: str) -> str:
    """The cursor that resumes after the event ``event_id``."""
    raw = json.dumps({"audit": event_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_audit_cursor(cursor: str) -> str:
    """The event id inside ``cursor``; InvalidCursorError unless this server issued it."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        event_id = data["audit"]
        if len(data) != 1 or not isinstance(event_id, str) or not _UUID.match(event_id):
            raise ValueError("not an audit cursor")
        return event_id
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError() from None


def event_from_row(row: RowMapping) -> AuditEvent:
    """The domain AuditEvent of an ``audit_events`` row."""
    return AuditEvent(**{name: row[name] for name in AuditEvent.__dataclass_fields__})
