"""CSV exports of jobs, streamed, and safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or
a line feed would run as a formula in Excel, LibreOffice or Google Sheets; it
is prefixed with ``'`` (OWASP "CSV Injection"), and every cell is quoted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

from fastapi.responses import StreamingResponse

from commq.domain.jobs import Job
from commq.entrypoints.api.schemas import iso

#: The exported columns, in order (the job's JSON names).
COLUMNS = (
    "id",
    "businessId",
    "communicationId",
    "channel",
    "recipient",
    "status",
    "attempts",
    "maxAttempts",
    "errorType",
    "lastError",
    "provider",
    "providerMessageId",
    "createdAt",
    "failedAt",
    "completedAt",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
#: Rows written per chunk of the response body.
_ROWS_PER_CHUNK = 500


def safe_cell(value: object) -> str:
    """The cell text, neutralised if a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def job_cells(job: Job) -> list[str]:
    """One job's row, in COLUMNS order."""
    values = (
        job.id,
        job.business_id,
        job.communication_id,
        job.channel.value,
        job.recipient,
        job.status.value,
        job.attempts,
        job.max_attempts,
        job.error_type.value if job.error_type else None,
        job.last_error,
        job.provider,
        job.provider_message_id,
        iso(job.created_at),
        iso(job.failed_at),
        iso(job.completed_at),
    )
    return [safe_cell(value) for value in values]


def _encode(rows: Iterable[Iterable[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


async def csv_body(jobs: AsyncIterator[Job]) -> AsyncIterator[bytes]:
    """The header row, then the jobs' rows, a chunk of rows at a time."""
    yield _encode([COLUMNS])
    rows: list[list[str]] = []
    async for job in jobs:
        rows.append(job_cells(job))
        if len(rows) == _ROWS_PER_CHUNK:
            yield _encode(rows)
            rows = []
    if rows:
        yield _encode(rows)


def csv_response(jobs: AsyncIterator[Job], name: str) -> StreamingResponse:
    """A streamed ``text/csv`` attachment named ``<name>-<UTC time>.csv``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        csv_body(jobs),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"'},
    )
