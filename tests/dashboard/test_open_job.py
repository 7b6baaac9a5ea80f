"""The header's "Job id" box: a pasted id opens its job, anything else the job page's 404."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .conftest import Dashboard, sign_in

OPEN = "/dashboard/open-job"


def _main(html: str) -> str:
    match = re.search(r"<main .*?</main>", html, re.S)
    assert match, html
    return match.group(0)


async def test_every_page_offers_a_labelled_job_id_box(dash: Dashboard) -> None:
    job = await dash.failed_job()
    client, _ = await dash.signed_in("acme_support")
    for path in ("/dashboard", "/dashboard/jobs", f"/dashboard/jobs/{job['id']}"):
        page = (await client.get(path)).text
        assert f'action="{OPEN}" role="search" aria-label="Open a job by id"' in page, path
        assert '<label for="open-job-id" class="visually-hidden">Job id</label>' in page
        assert '<input id="open-job-id" name="id" placeholder="Job id" required' in page
    login = (await dash.browser().get("/dashboard/login")).text
    assert OPEN not in login  # nothing to open before signing in


async def test_a_job_id_opens_that_jobs_page(dash: Dashboard) -> None:
    job = await dash.failed_job()
    client, _ = await dash.signed_in("acme_support")
    response = await client.get(OPEN, params={"id": job["id"]})
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/jobs/{job['id']}"
    page = await client.get(response.headers["location"])
    assert page.status_code == 200 and f'Job <span class="mono">{job["id"]}</span>' in page.text


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda i: f"  {i} ", id="spaces"),
        pytest.param(lambda i: f"\t{i}\r\n", id="tab-and-line-break"),
        pytest.param(lambda i: i.upper(), id="capitals"),
        pytest.param(lambda i: "{" + i + "}", id="braces"),
        pytest.param(lambda i: i.replace("-", ""), id="no-hyphens"),
        pytest.param(lambda i: f" urn:uuid:{i}", id="urn"),
    ],
)
async def test_a_pasted_id_with_spaces_or_another_uuid_spelling_opens_the_job(
    dash: Dashboard, spelling: Callable[[str], str]
) -> None:
    job = await dash.api.enqueue("acme_producer")
    client, _ = await dash.signed_in("acme_admin")
    response = await client.get(OPEN, params={"id": spelling(job["id"])})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/dashboard/jobs/{job['id']}"


async def test_another_business_job_looks_exactly_like_an_unknown_id(dash: Dashboard) -> None:
    theirs = await dash.api.enqueue("globex_producer")
    client, _ = await dash.signed_in("acme_admin")
    unknown = "01900000-0000-7000-8000-000000000000"
    answers = [await client.get(OPEN, params={"id": i}) for i in (theirs["id"], unknown)]
    assert [a.status_code for a in answers] == [404, 404]
    assert "There is no such job, or it belongs to another business." in answers[0].text
    assert answers[0].text == answers[1].text
    assert theirs["id"] not in answers[0].text
    # The same page the job's own address gives.
    direct = await client.get(f"/dashboard/jobs/{unknown}")
    assert direct.status_code == 404 and _main(direct.text) == _main(answers[1].text)


@pytest.mark.parametrize(
    "typed",
    ["no-such-job", "a/b", "../../communication-queue/stats", "x\x00y", "7" * 10_000],
)
async def test_text_no_job_has_gets_the_friendly_not_found_page(
    dash: Dashboard, typed: str
) -> None:
    client, _ = await dash.signed_in("acme_admin")
    response = await client.get(OPEN, params={"id": typed})
    assert response.status_code == 404
    assert "<h1>Job not found</h1>" in response.text
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize("typed", [None, "", "   ", "\n\t"])
async def test_an_empty_box_goes_to_the_jobs_list(dash: Dashboard, typed: str | None) -> None:
    client, _ = await dash.signed_in("acme_admin")
    params = {} if typed is None else {"id": typed}
    response = await client.get(OPEN, params=params)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/jobs"


async def test_hostile_text_in_the_box_is_never_echoed_as_markup(dash: Dashboard) -> None:
    client, _ = await dash.signed_in("acme_admin")
    hostile = '"><script>window.__xss=1</script>'
    response = await client.get(OPEN, params={"id": hostile})
    assert response.status_code == 404 and "<script>window" not in response.text


async def test_signing_in_from_a_pasted_id_lands_on_the_job(dash: Dashboard) -> None:
    job = await dash.api.enqueue("acme_producer")
    client = dash.browser()
    asked = await client.get(OPEN, params={"id": f" {job['id']} "})
    assert asked.status_code == 303
    assert asked.headers["location"].startswith("/dashboard/login?then=/dashboard/open-job")
    then = f"{OPEN}?id={job['id']}"
    signed = await sign_in(client, dash.api.keys["acme_support"], then=then)
    assert signed.status_code == 303 and signed.headers["location"] == then
    opened = await client.get(then)
    assert opened.headers["location"] == f"/dashboard/jobs/{job['id']}"
