"""Job lists: filters, keyset orders and their opaque cursors.

A cursor is urlsafe base64 of JSON ``{"o": order, "k": [sort key of the last row]}``.
Anything that does not decode to exactly that shape, for the order asked,
raises InvalidCursorError.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Text,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    tuple_,
)

from commq.adapters.store.driver_calls import DriverStatement
from commq.adapters.store.engine import Dialect
from commq.adapters.store.rows import job_reader
from commq.adapters.store.tables import ascii_lower, jobs, sql_status
from commq.domain.errors import InvalidCursorError
from commq.domain.jobs import Channel, Job, JobStatus
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


#: JobFilter's fields matched by equality, with their columns (status aside: a literal).
_EQUAL: dict[str, ColumnElement[Any]] = {
    "business_id": _c.business_id,
    "channel": _c.channel,
    "provider": _c.provider,
    "error_type": _c.error_type,
    "communication_id": _c.communication_id,
}
_LOWER_ASCII = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LIMIT = "page_limit"


def filter_conditions(where: JobFilter) -> list[ColumnElement[bool]]:
    """The SQL conditions of a JobFilter (every field that is set), its values bound."""
    values = filter_values(where)
    return _conditions(_Shape.of(where), lambda name, kind: bindparam(name, values[name], kind))


def filter_values(where: JobFilter) -> dict[str, Any]:
    """The bound values of a JobFilter's conditions, by parameter name."""
    values: dict[str, Any] = {
        _param(name): _plain(getattr(where, name))
        for name in _EQUAL
        if getattr(where, name) is not None
    }
    if where.recipient is not None:
        values[_param("recipient")] = where.recipient
        # E-mail addresses are matched as the suppression list keys them: ASCII letters
        # in any case (Ana@Example.com is ana@example.com); numbers and URLs exactly.
        values[_param("recipient_lower")] = where.recipient.translate(_LOWER_ASCII)
    if where.q:
        # What icontains(q, autoescape=True) matches: q anywhere, its % _ / taken as text.
        escaped = where.q.replace("/", "//").replace("%", "/%").replace("_", "/_")
        values[_param("q")] = f"%{escaped}%"
    for name in ("created_from", "created_to"):
        if getattr(where, name) is not None:
            values[_param(name)] = getattr(where, name)
    return values


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a page's statement text depends on: which filters are set, and the status."""

    fields: frozenset[str]
    status: JobStatus | None

    @classmethod
    def of(cls, where: JobFilter) -> _Shape:
        names = (*_EQUAL, "recipient", "created_from", "created_to")
        fields = {n for n in names if getattr(where, n) is not None}
        if where.q:  # an empty search matches everything: no condition
            fields.add("q")
        return cls(frozenset(fields), where.status)


def _conditions(
    shape: _Shape, bound: Callable[[str, Any], ColumnElement[Any]]
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        column == bound(_param(name), column.type)
        for name, column in _EQUAL.items()
        if name in shape.fields
    ]
    if shape.status is not None:
        conditions.append(_c.status == sql_status(shape.status))  # partial indexes need it
    if "recipient" in shape.fields:
        exact = _c.recipient == bound(_param("recipient"), _c.recipient.type)
        lowered = ascii_lower(_c.recipient) == bound(_param("recipient_lower"), Text())
        email = _c.channel == literal_column(f"'{Channel.EMAIL.value}'", Text())
        conditions.append(or_(exact, and_(email, lowered)))
    if "q" in shape.fields:
        pattern = func.lower(bound(_param("q"), Text()))
        conditions.append(func.lower(_c.last_error).like(pattern, escape="/"))
    if "created_from" in shape.fields:
        conditions.append(_c.created_at >= bound(_param("created_from"), _c.created_at.type))
    if "created_to" in shape.fields:
        conditions.append(_c.created_at < bound(_param("created_to"), _c.created_at.type))
    return conditions


def _param(name: str) -> str:
    return f"page_{name}"


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True, slots=True)
class DriverPage:
    """A page's statement compiled for the driver, and how to read its jobs."""

    statement: DriverStatement
    read_job: Callable[[Sequence[Any]], Job]


def page_on_driver(
    dialect: Dialect, where: JobFilter, order: ListOrder, cursor: str | None, limit: int
) -> tuple[DriverPage, dict[str, Any]]:
    """One page's statement (``limit + 1`` rows, to tell whether more follow) and its
    values. Compiled once per shape of filter, order and cursor: the lists are read
    on every dashboard refresh, and building and executing each through SQLAlchemy's
    async engine cost more than the query."""
    params = filter_values(where) | {_LIMIT: limit + 1}
    if cursor is not None:
        after = decode_cursor(cursor, order)
        params |= {f"page_after_{i}": value for i, value in enumerate(after)}
    return _driver_page(dialect, _Shape.of(where), order, cursor is not None), params


# Bounded: the shapes a deployment's dashboards and clients use are few, the possible
# ones (filters x statuses x orders) thousands.
@lru_cache(maxsize=256)
def _driver_page(dialect: Dialect, shape: _Shape, order: ListOrder, resumed: bool) -> DriverPage:
    keyset = _KEYSETS[order]
    query = jobs.select().where(*_conditions(shape, lambda name, kind: bindparam(name, type_=kind)))
    if keyset.where is not None:
        query = query.where(keyset.where)
    if resumed:
        row_key = tuple_(*keyset.columns)
        after = tuple_(
            *(bindparam(f"page_after_{i}", type_=c.type) for i, c in enumerate(keyset.columns))
        )
        query = query.where(row_key < after if keyset.descending else row_key > after)
    ordering = [col.desc() if keyset.descending else col.asc() for col in keyset.columns]
    query = query.order_by(*ordering).limit(bindparam(_LIMIT, type_=Integer()))
    statement = DriverStatement.compile(query, dialect)
    return DriverPage(statement, job_reader(statement.names, dict(statement.readers)))


def encode_cursor(order: ListOrder, job: Job) -> str:
    """The cursor that resumes ``order`` after ``job``."""
    key = [_json_value(getattr(job, col.name)) for col in _KEYSETS[order].columns]
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
