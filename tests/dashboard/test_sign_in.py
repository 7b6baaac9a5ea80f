"""Signing in with an API key, the session cookie, and signing out."""

from __future__ import annotations

import base64
import json
import re
import time

import httpx

from .conftest import Dashboard, login_token, sign_in


def _session_cookie(response: httpx.Response) -> str:
    [header] = [
        h for h in response.headers.get_list("set-cookie") if h.startswith("commq_session=")
    ]
    return header


async def test_the_sign_in_page_asks_for_an_api_key(dash: Dashboard) -> None:
    page = await dash.browser().get("/dashboard/login")
    assert page.status_code == 200
    assert re.search(r'<label for="key">API key</label>', page.text)
    assert re.search(r'<input id="key" name="key" type="password"', page.text)
    assert re.search(r'<button type="submit"[^>]*>Sign in</button>', page.text)


async def test_signing_in_sets_an_httponly_strict_expiring_session_cookie(dash: Dashboard) -> None:
    response = await sign_in(dash.browser(), dash.api.keys["acme_support"])
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = _session_cookie(response).lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=28800" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http here; see the https test


async def test_the_session_cookie_is_secure_when_served_over_https(dash: Dashboard) -> None:
    client = httpx.AsyncClient(transport=dash.api.client._transport, base_url="https://commq.test")
    response = await sign_in(client, dash.api.keys["acme_admin"])
    assert "secure" in _session_cookie(response).lower()


async def test_the_cookie_carries_no_key_and_names_role_and_business(dash: Dashboard) -> None:
    response = await sign_in(dash.browser(), dash.api.keys["acme_manager"])
    value = _session_cookie(response).split(";")[0].split("=", 1)[1]
    assert dash.api.keys["acme_manager"].split("_", 2)[2] not in value
    body = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
    assert body["role"] == "manager" and body["business_id"] == "acme"
    assert body["expires_at"] > time.time() + 8 * 3600 - 60


async def test_a_wrong_key_is_refused_with_a_message(dash: Dashboard) -> None:
    response = await sign_in(dash.browser(), "cq_000000000000_nope")
    assert response.status_code == 401
    assert "That API key is not valid." in response.text
    assert "commq_session=" not in response.headers.get("set-cookie", "")


async def test_a_producer_key_cannot_use_the_dashboard(dash: Dashboard) -> None:
    response = await sign_in(dash.browser(), dash.api.keys["acme_producer"])
    assert response.status_code == 403
    assert "producer key cannot use the dashboard" in response.text


async def test_sign_in_without_the_forms_token_is_refused(dash: Dashboard) -> None:
    client = dash.browser()
    await client.get("/dashboard/login")
    data = {"key": dash.api.keys["acme_admin"], "csrf": "forged"}
    response = await client.post("/dashboard/login", data=data)
    assert response.status_code == 403
    assert "commq_session=" not in response.headers.get("set-cookie", "")


async def test_sign_in_posted_from_another_site_is_refused(dash: Dashboard) -> None:
    client = dash.browser()
    form = await client.get("/dashboard/login")
    data = {"key": dash.api.keys["acme_admin"], "csrf": login_token(form.text)}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await client.post("/dashboard/login", data=data, headers=headers)
        assert response.status_code == 403, headers


async def test_pages_send_a_visitor_without_a_session_to_sign_in(dash: Dashboard) -> None:
    client = dash.browser()
    for path in ("/dashboard", "/dashboard/jobs?status=failed", "/dashboard/jobs/abc"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login?then=/dashboard")
    response = await client.get("/dashboard/jobs?status=failed")
    assert response.headers["location"] == "/dashboard/login?then=/dashboard/jobs%3Fstatus%3Dfailed"


async def test_a_page_swap_without_a_session_sends_the_whole_browser_to_sign_in(
    dash: Dashboard,
) -> None:
    # htmx follows a 303 itself and would swap the sign-in page's body into the table.
    response = await dash.browser().get(
        "/dashboard/jobs?status=failed", headers={"HX-Request": "true"}
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == (
        "/dashboard/login?then=/dashboard/jobs%3Fstatus%3Dfailed"
    )


async def test_after_sign_in_the_visitor_returns_to_the_page_asked_for(dash: Dashboard) -> None:
    response = await sign_in(dash.browser(), dash.api.keys["acme_admin"], "/dashboard/jobs?q=x")
    assert response.headers["location"] == "/dashboard/jobs?q=x"


async def test_sign_in_never_redirects_to_another_site(dash: Dashboard) -> None:
    for then in ("https://evil.example/", "//evil.example/x", "/dashboard//evil.example", "/\\\\x"):
        response = await sign_in(dash.browser(), dash.api.keys["acme_admin"], then)
        assert response.headers["location"] == "/dashboard", then


async def test_a_forged_or_altered_cookie_is_no_session(dash: Dashboard) -> None:
    response = await sign_in(dash.browser(), dash.api.keys["acme_support"])
    value = _session_cookie(response).split(";")[0].split("=", 1)[1]
    body, mac = value.split(".")
    for forged in (f"{body}.{mac[:-2]}xx", f"{body[:-2]}AA.{mac}", "garbage", f"{body}"):
        client = dash.browser()
        client.cookies.set("commq_session", forged)
        assert (await client.get("/dashboard")).status_code == 303, forged
        answer = await client.get("/communication-queue/stats")
        assert answer.status_code == 401, forged


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(dash: Dashboard) -> None:
    client, csrf = await dash.signed_in("acme_admin")
    refused = await client.post("/dashboard/logout", data={"csrf": "nope"})
    assert refused.status_code == 403
    assert (await client.get("/dashboard")).status_code == 200
    response = await client.post("/dashboard/logout", data={"csrf": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login"
    assert 'commq_session=""' in response.headers["set-cookie"]
    assert (await client.get("/dashboard")).status_code == 303


async def test_signed_in_visitors_skip_the_sign_in_form(dash: Dashboard) -> None:
    client, _ = await dash.signed_in("acme_admin")
    response = await client.get("/dashboard/login")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
