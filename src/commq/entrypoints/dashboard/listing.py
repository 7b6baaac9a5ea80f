"""The jobs page's tabs and filters: read from the query string, written back as links.

The page reads its filters leniently (an unreadable value is dropped with a
note, never a 422 page), and hands the same filters to the REST API's bulk
actions and CSV export in the API's own names. A filter it can read but the API
would refuse (dates the wrong way round) is kept in the form, explained beside
it, and offers no export or bulk action, whose answer would only be a 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from commq.domain.jobs import Channel, ErrorType, JobStatus
from commq.domain.listing import JobFilter, ListOrder, PageRequest

PAGE_SIZE = 50
#: The status tabs, in the order a job moves through them.
TABS = ("pending", "processing", "failed", "completed", "cancelled")
_TEXT_FIELDS = {
    "provider": 100,
    "q": 200,
    "recipient": 2048,
    "communicationId": 200,
    "businessId": 200,
}
_ORDERS = {"pending": ListOrder.DUE, "failed": ListOrder.RECENTLY_FAILED}


@dataclass(frozen=True)
class Listing:
    """What the jobs page shows: one tab, its filters and a page cursor."""

    #: The filter values as the form shows them (API names; dates as YYYY-MM-DD).
    values: dict[str, str] = field(default_factory=dict)
    cursor: str | None = None
    #: Values that could not be read and were ignored.
    problems: list[str] = field(default_factory=list)
    #: Values kept but refused, by field name: the page lists no jobs for them.
    errors: dict[str, str] = field(default_factory=dict)
    #: Filters given but ignored as unreadable: the list is wider than the one asked for.
    ignored: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Whether the API takes these filters, so the list, export and bulk actions work."""
        return not self.errors

    @property
    def acts(self) -> bool:
        """Whether bulk actions are offered: not on a list an ignored filter widened.

        A stale link's ``channel=fax`` is dropped with a note, and "Cancel matching
        pending" would then cancel every pending job, not the ones the link meant.
        """
        return self.usable and not self.ignored

    @property
    def status(self) -> str | None:
        """The status tab (None: all jobs)."""
        return self.values.get("status")

    @property
    def filtered(self) -> bool:
        """Whether anything beyond the tab narrows the list."""
        return any(k not in ("status", "businessId") for k in self.values)

    def job_filter(self) -> JobFilter:
        """The domain filter for this listing."""
        v = self.values
        return JobFilter(
            business_id=v.get("businessId"),
            status=JobStatus(v["status"]) if "status" in v else None,
            channel=Channel(v["channel"]) if "channel" in v else None,
            provider=v.get("provider"),
            error_type=ErrorType(v["errorType"]) if "errorType" in v else None,
            communication_id=v.get("communicationId"),
            recipient=v.get("recipient"),
            q=v.get("q"),
            created_from=_day_start(v.get("createdFrom")),
            created_to=_day_start(v.get("createdTo"), days=1),
        )

    def page_request(self) -> PageRequest:
        """Keyset paging in the tab's natural order."""
        return PageRequest(_ORDERS.get(self.status or "", ListOrder.NEWEST), PAGE_SIZE, self.cursor)

    def api_filter(self) -> dict[str, Any]:
        """The filters as the REST API's bulk actions take them (no status)."""
        body: dict[str, Any] = {k: v for k, v in self.values.items() if k != "status"}
        for name, days in (("createdFrom", 0), ("createdTo", 1)):
            if name in body:
                body[name] = _iso(_day_start(body[name], days))
        # createdTo 9999-12-31 has no day after it: no bound at all, and left out,
        # since the export's query string would spell None as "None" (a 422).
        return {k: v for k, v in body.items() if v is not None}

    def export_url(self) -> str:
        """The CSV export of what this listing shows."""
        params = self.api_filter()
        if self.status == "failed":
            return "/communication-queue/failed/export.csv?" + urlencode(params)
        if self.status:
            params = {"status": self.status, **params}
        return "/communication-queue/jobs/export.csv?" + urlencode(params)

    def link(self, **changes: str | None) -> str:
        """This listing's URL with some values changed (None removes one); first page."""
        values: dict[str, str | None] = {**self.values, **changes}
        query = urlencode({k: v for k, v in values.items() if v and k != "cursor"})
        cursor = changes.get("cursor")
        if cursor:
            query += ("&" if query else "") + urlencode({"cursor": cursor})
        return "/dashboard/jobs" + (f"?{query}" if query else "")


def parse_listing(params: Mapping[str, str], platform: bool) -> Listing:
    """Read the jobs page's query string; ``platform`` keys may also pick a business."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for name, choices in (("status", TABS), ("channel", _values(Channel))):
        _choice(params, name, choices, values, problems)
    _choice(params, "errorType", _values(ErrorType), values, problems)
    for name, limit in _TEXT_FIELDS.items():
        text = params.get(name, "").strip()
        if not text or (name == "businessId" and not platform):
            continue
        if len(text) > limit or "\x00" in text:
            problems.append(f"{name} is too long or unreadable and was ignored")
            continue
        values[name] = text
    for name in ("createdFrom", "createdTo"):
        _day(params, name, values, problems)
    cursor = params.get("cursor") or None
    # A business key's businessId is not a filter it lost: it never picks a business.
    readable = set(values) if platform else {*values, "businessId"}
    ignored = tuple(
        name for name in _FILTERS if params.get(name, "").strip() and name not in readable
    )
    return Listing(values, cursor, problems, _refusals(values), ignored)


#: Every query parameter the page reads as a filter (the cursor is not one).
_FILTERS = ("status", "channel", "errorType", *_TEXT_FIELDS, "createdFrom", "createdTo")


#: Why the API refuses dates the wrong way round; the form's days are both included.
REVERSED_DATES = (
    "'Created to' must be after 'Created from', or the same day (both days are included)."
)


def _refusals(values: dict[str, str]) -> dict[str, str]:
    # The API answers 422 when createdTo is not after createdFrom. The form's createdTo
    # day is included (its end is the next midnight), so only an earlier day is refused.
    start, end = values.get("createdFrom"), values.get("createdTo")
    if start and end and date.fromisoformat(end) < date.fromisoformat(start):
        return {"createdTo": REVERSED_DATES}
    return {}


def _values(enum: type[Channel] | type[ErrorType]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


def _choice(
    params: Mapping[str, str],
    name: str,
    choices: tuple[str, ...],
    values: dict[str, str],
    problems: list[str],
) -> None:
    chosen = params.get(name, "")
    if chosen in choices:
        values[name] = chosen
    elif chosen:
        problems.append(f"{name} {chosen!r} is not one of {', '.join(choices)} and was ignored")


def _day(params: Mapping[str, str], name: str, values: dict[str, str], problems: list[str]) -> None:
    text = params.get(name, "")
    if not text:
        return
    try:
        values[name] = date.fromisoformat(text).isoformat()
    except ValueError:
        problems.append(f"{name} must be a date (YYYY-MM-DD) and was ignored")


def _day_start(text: str | None, days: int = 0) -> datetime | None:
    """Midnight UTC of a YYYY-MM-DD day (``days`` later: createdTo is exclusive)."""
    if text is None:
        return None
    start = datetime.combine(date.fromisoformat(text), time(), UTC)
    try:
        return start + timedelta(days=days)
    except OverflowError:  # the day after 9999-12-31: nothing is later, so no bound
        return None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
