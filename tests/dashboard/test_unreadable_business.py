"""A platform key's business filter that no business can have, on every page and backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from commq.entrypoints.settings import Settings

from .conftest import Dashboard, base_settings, with_providers

#: A NUL (PostgreSQL cannot compare text holding one) and a name past the 200-character cap.
UNREADABLE = ["\x00", "acme\x00", "a" * 201]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """On SQLite and PostgreSQL: only PostgreSQL turned the NUL into a 500."""
    return with_providers(
        base_settings(database_url, tmp_path),
        "email=outbox,sms=outbox,webhook=webhook",
        session_secret="dashboard-test-secret",
    )


@pytest.mark.parametrize("business", UNREADABLE, ids=["nul", "name-nul", "too-long"])
@pytest.mark.parametrize(
    "path", ["/dashboard", "/dashboard/jobs", "/dashboard/audit", "/dashboard/suppressions"]
)
async def test_a_business_no_one_can_have_is_ignored_not_a_server_error(
    dash: Dashboard, path: str, business: str
) -> None:
    await dash.api.enqueue("acme_producer")
    client, _ = await dash.signed_in("admin")
    page = await client.get(path, params={"businessId": business})
    assert page.status_code == 200, page.text[:300]
    if path in ("/dashboard", "/dashboard/jobs"):
        # Ignored as the jobs page's own filter ignores it: every business, acme's job too.
        assert 'data-stat="pending">1</span>' in page.text
