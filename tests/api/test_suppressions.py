"""GET/DELETE /communication-queue/suppressions: roles, tenants, paging, audit."""

from __future__ import annotations

from sqlalchemy import text

from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.domain.jobs import Channel
from commq.domain.suppression import Suppression, SuppressionReason

from .conftest import Api

URL = "/communication-queue/suppressions"


async def _suppress(api: Api, business: str, recipient: str, channel: Channel = Channel.EMAIL):
    entry = Suppression(business, channel, recipient, SuppressionReason.HARD_BOUNCE, "job-1")
    await SqlSuppressionStore(api.container.engine).add_suppression(entry)


async def test_managers_list_their_business_suppressions_in_pages(api: Api) -> None:
    for name in ("b", "a", "c"):
        await _suppress(api, "acme", f"{name}@example.com")
    await _suppress(api, "globex", "z@example.com")
    first = await api.client.get(URL, params={"limit": 2}, headers=api.as_("acme_manager"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert [i["recipient"] for i in body["items"]] == ["a@example.com", "b@example.com"]
    assert body["items"][0] == {
        "businessId": "acme",
        "channel": "email",
        "recipient": "a@example.com",
        "reason": "hard_bounce",
        "jobId": "job-1",
        "createdAt": body["items"][0]["createdAt"],
    }
    assert body["items"][0]["createdAt"].endswith("Z")
    rest = await api.client.get(
        URL, params={"limit": 2, "cursor": body["nextCursor"]}, headers=api.as_("acme_manager")
    )
    assert [i["recipient"] for i in rest.json()["items"]] == ["c@example.com"]
    assert rest.json()["nextCursor"] is None


async def test_a_platform_admin_sees_every_business_or_narrows_to_one(api: Api) -> None:
    await _suppress(api, "acme", "a@example.com")
    await _suppress(api, "globex", "g@example.com")
    everyone = await api.client.get(URL, headers=api.as_("admin"))
    assert {i["businessId"] for i in everyone.json()["items"]} == {"acme", "globex"}
    narrowed = await api.client.get(URL, params={"businessId": "globex"}, headers=api.as_("admin"))
    assert [i["recipient"] for i in narrowed.json()["items"]] == ["g@example.com"]


async def test_support_and_producers_may_not_see_or_change_suppressions(api: Api) -> None:
    await _suppress(api, "acme", "a@example.com")
    for who in ("acme_support", "acme_producer"):
        assert (await api.client.get(URL, headers=api.as_(who))).status_code == 403
        deleted = await api.client.delete(f"{URL}/a@example.com", headers=api.as_(who))
        assert deleted.status_code == 403
    assert (await api.client.get(URL)).status_code == 401


async def test_deleting_a_suppression_is_audited_and_only_in_the_callers_business(
    api: Api,
) -> None:
    await _suppress(api, "acme", "ana@example.com")
    await _suppress(api, "globex", "ana@example.com")
    gone = await api.client.delete(f"{URL}/Ana@Example.com", headers=api.as_("acme_admin"))
    assert gone.status_code == 200, gone.text
    assert gone.json()["success"] is True
    again = await api.client.delete(f"{URL}/ana@example.com", headers=api.as_("acme_admin"))
    assert again.status_code == 404
    left = await api.client.get(URL, headers=api.as_("admin"))
    assert [i["businessId"] for i in left.json()["items"]] == ["globex"]
    async with api.container.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT action, business_id, actor_name, count FROM audit_events")
            )
        ).all()
    assert [tuple(r) for r in rows] == [("suppression.delete", "acme", "acme_admin", None)]


async def test_a_platform_key_must_name_the_business_to_delete_from(api: Api) -> None:
    await _suppress(api, "acme", "+14155550100", Channel.SMS)
    unnamed = await api.client.delete(f"{URL}/+14155550100", headers=api.as_("admin"))
    assert unnamed.status_code == 422
    named = await api.client.delete(
        f"{URL}/+14155550100", params={"businessId": "acme"}, headers=api.as_("admin")
    )
    assert named.status_code == 200


async def test_a_job_to_a_suppressed_recipient_fails_at_once_with_the_reason(api: Api) -> None:
    await _suppress(api, "acme", "ana@example.com")
    job = await api.enqueue("acme_producer")
    await api.container.dispatcher().drain("acme")
    found = await api.client.get(f"/communication-queue/{job['id']}", headers=api.as_("admin"))
    body = found.json()
    assert (body["status"], body["errorType"], body["attempts"]) == ("failed", "permanent", 0)
    assert body["lastError"].startswith("recipient is suppressed: hard bounce on ")
    assert body["lastError"].endswith("(job job-1)")
    assert not api.outbox.exists() or not any(api.outbox.iterdir())  # nothing was sent


async def test_a_recipient_holding_a_slash_is_removed_when_percent_encoded(api: Api) -> None:
    await _suppress(api, "acme", "sales/eu@example.com")  # "/" is valid in a local part
    gone = await api.client.delete(f"{URL}/sales%2Feu%40example.com", headers=api.as_("acme_admin"))
    assert gone.status_code == 200, gone.text
    assert (await api.client.get(URL, headers=api.as_("acme_admin"))).json()["items"] == []


async def test_one_recipient_is_looked_up_in_the_callers_business_only(api: Api) -> None:
    await _suppress(api, "acme", "ana@example.com")
    await _suppress(api, "globex", "ana@example.com")
    await _suppress(api, "globex", "bo@example.com")
    found = await api.client.get(f"{URL}/Ana@Example.com", headers=api.as_("acme_manager"))
    assert found.status_code == 200, found.text
    [entry] = found.json()["items"]
    assert (entry["businessId"], entry["channel"], entry["recipient"], entry["reason"]) == (
        "acme",
        "email",
        "ana@example.com",
        "hard_bounce",
    )
    # Another business's entry is as absent as one nobody listed.
    hidden = await api.client.get(f"{URL}/bo@example.com", headers=api.as_("acme_manager"))
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    other = await api.client.get(
        f"{URL}/bo@example.com", params={"businessId": "globex"}, headers=api.as_("acme_admin")
    )
    assert other.status_code == 403
    everywhere = await api.client.get(f"{URL}/ana@example.com", headers=api.as_("admin"))
    assert [i["businessId"] for i in everywhere.json()["items"]] == ["acme", "globex"]
    slash = await api.client.get(f"{URL}/sales%2Feu%40example.com", headers=api.as_("admin"))
    assert slash.status_code == 404
    for who in ("acme_support", "acme_producer"):
        refused = await api.client.get(f"{URL}/ana@example.com", headers=api.as_(who))
        assert refused.status_code == 403
