"""Job lists: filters, keyset orders and their opaque cursors.

A cursor is urlsafe base64 of JSON ``{"o": order, "k": [sort key of the last row]}``.
Anything that does not decode to exactly that shape, for the order asked,
raises InvalidCursorError.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, tuple_
from sqlalchemy.engine import RowMapping

from commq.adapters.store.tables import jobs, sql_status
from commq.domain.errors import InvalidCursorError
from commq.domain.jobs import JobStatus
from commq.domain.listing import JobFilter, ListOrder

_c = jobs.c


@dataclass(frozen=True, slots=True)
class _Keyset:
    """How one ListOrder sorts, narrows and resumes."""

    columns: tuple[Any, ...]
    descending: bool
    #: Decodes the cursor's JSON key back into column values (raises on bad input).
    decode: Callable[[list[Any]], tuple[Any, ...]]
    where: ColumnElement[bool] | None = None


def _id_key(key: list[Any]) -> tuple[Any, ...]:
    (job_id,) = key
    return (_text(job_id),)


def _time_id_key(key: list[Any]) -> tuple[Any, ...]:
    at, job_id = key
    moment = datetime.fromisoformat(_text(at))
    if moment.tzinfo is None:
        raise ValueError("cursor times carry their offset")
    return (moment.astimezone(UTC), _text(job_id))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("cursor keys are strings")
    return value


_KEYSETS: dict[ListOrder, _Keyset] = {
    ListOrder.NEWEST: _Keyset((_c.id,), True, _id_key),
    ListOrder.OLDEST: _Keyset((_c.id,), False, _id_key),
    ListOrder.DUE: _Keyset(
        (_c.run_at, _c.id), False, _time_id_key, _c.status == sql_status(JobStatus.PENDING)
    ),
    ListOrder.RECENTLY_FAILED: _Keyset(
        (_c.failed_at, _c.id),
        True,
        _time_id_key,
        and_(_c.status == sql_status(JobStatus.FAILED), _c.failed_at.is_not(None)),
    ),
}


def filter_conditions(where: JobFilter) -> list[ColumnElement[bool]]:
    """The SQL conditions of a JobFilter (every field that is set)."""
    equal = {
        _c.business_id: where.business_id,
        _c.status: where.status,
        _c.channel: where.channel,
        _c.provider: where.provider,
        _c.error_type: where.error_type,
        _c.communication_id: where.communication_id,
        _c.recipient: where.recipient,
    }
    conditions: list[ColumnElement[bool]] = [
        column == value for column, value in equal.items() if value is not None
    ]
    if where.q:
        conditions.append(_c.last_error.icontains(where.q, autoescape=True))
    if where.created_from is not None:
        conditions.append(_c.created_at >= where.created_from)
    if where.created_to is not None:
        conditions.append(_c.created_at < where.created_to)
    return conditions


def page_query(where: JobFilter, order: ListOrder, cursor: str | None, limit: int) -> Select[Any]:
    """The query for one page; it fetches ``limit + 1`` rows to tell whether more follow."""
    keyset = _KEYSETS[order]
    query = jobs.select().where(*filter_conditions(where))
    if keyset.where is not None:
        query = query.where(keyset.where)
    if cursor is not None:
        after = decode_cursor(cursor, order)
        row_key = tuple_(*keyset.columns)
        query = query.where(row_key < after if keyset.descending else row_key > after)
    ordering = [col.desc() if keyset.descending else col.asc() for col in keyset.columns]
    return query.order_by(*ordering).limit(limit + 1)


def encode_cursor(order: ListOrder, row: RowMapping) -> str:
    """The cursor that resumes ``order`` after ``row``."""
    key = [_json_value(row[col.name]) for col in _KEYSETS[order].columns]
    raw = json.dumps({"o": order.value, "k": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: ListOrder) -> tuple[Any, ...]:
    """The sort key inside ``cursor``; InvalidCursorError unless this server issued it."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if data["o"] != order.value or not isinstance(data["k"], list):
            raise ValueError("cursor of another list")
        return _KEYSETS[order].decode(data["k"])
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError() from None


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
