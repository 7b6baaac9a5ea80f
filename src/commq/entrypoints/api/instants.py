"""ISO-8601 instants as the API reads them: aware, in UTC, and representable there."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


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
UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
