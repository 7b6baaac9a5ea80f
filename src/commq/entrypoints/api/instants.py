"""ISO-8601 instants as the API reads them: aware, in UTC, and representable there."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BeforeValidator

#: A number, as a JSON value or as text: 1700000000, "2030", "1.7e9".
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def not_a_number(value: object) -> object:
    """``value`` unless it is a number, which pydantic would read as Unix time.

    ``?createdFrom=2030`` would otherwise mean 33 minutes past midnight on 1 January
    1970, and ``"runAt": 1700000000000`` seconds or milliseconds by its size.
    """
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO-8601 date or date-time such as 2030-01-01T09:00:00Z")
    return value


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC (no offset means UTC).

    ``9999-12-31T23:59:59-14:00`` is valid ISO-8601 but lies past the last instant
    Python can hold in UTC: that is a ValueError (422 naming the field), not a 500.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the instant is outside the years 1 to 9999 in UTC") from None


#: A request's instant, converted to UTC while it is validated.
UtcDateTime = Annotated[datetime, BeforeValidator(not_a_number), AfterValidator(as_utc)]


def check_order(start: datetime | None, end: datetime | None, names: tuple[str, str]) -> None:
    """A 422 naming the query's end parameter when a range ends where or before it starts.

    The end is exclusive, so such a range matches nothing: it is almost surely the two
    swapped, which an empty answer would hide.
    """
    if start is not None and end is not None and end <= start:
        message = f"must be later than {names[0]} ({names[1]} is exclusive)"
        error = {"type": "range_order", "loc": ("query", names[1]), "msg": message, "input": None}
        raise RequestValidationError([error])
