"""POST /webhooks/sendgrid and /webhooks/twilio: signed events move deliveryStatus, forged
ones are refused. Keys are generated in the test."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from commq.adapters.callbacks.twilio_status import twilio_signature
from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.domain.jobs import Channel
from commq.entrypoints.settings import ReliabilitySettings, Settings

from .conftest import Api, base_settings, running

TWILIO_TOKEN = "twilio-auth-token-for-tests"
SG_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SG_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


@pytest.fixture
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _verifying(
    database_url: str, tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey
) -> Settings:
    """Settings that verify SendGrid's events with ``signing_key`` and Twilio's with its token."""
    der = signing_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return replace(
        base_settings(database_url, tmp_path),
        reliability=ReliabilitySettings(
            sendgrid_webhook_public_key=base64.b64encode(der).decode(),
            twilio_auth_token=TWILIO_TOKEN,
        ),
    )


@pytest.fixture
async def api(
    sqlite_url: str, tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey
) -> AsyncIterator[Api]:
    async with running(_verifying(sqlite_url, tmp_path, signing_key)) as built:
        yield built


def _signed(key: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps(events).encode()
    timestamp = "1777777777"
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        SG_SIGNATURE: base64.b64encode(signature).decode(),
        SG_TIMESTAMP: timestamp,
        "Content-Type": "application/json",
    }
    return {"content": body, "headers": headers}


async def _sent_job(api: Api, provider: str, message_id: str, **fields: Any) -> str:
    """A job completed by ``provider`` with ``message_id`` (as the sender would leave it)."""
    job = await api.enqueue(**fields)
    async with api.container.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE jobs SET status='completed', provider=:p, provider_message_id=:m "
                "WHERE id=:id"
            ),
            {"p": provider, "m": message_id, "id": job["id"]},
        )
    return str(job["id"])


async def _job(api: Api, job_id: str) -> dict[str, Any]:
    found = await api.client.get(f"/communication-queue/{job_id}", headers=api.as_("admin"))
    return dict(found.json())


def _sg_event(event: str, event_id: str, message_id: str = "abc123", **more: Any) -> dict[str, Any]:
    return {
        "email": "ana@example.com",
        "timestamp": 1777777777,
        "event": event,
        "sg_event_id": event_id,
        "sg_message_id": f"{message_id}.filterdrecv-5b6b-1-6655-1.0",
        **more,
    }


async def test_signed_sendgrid_events_move_delivery_status_forward_only(
    api: Api, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    job_id = await _sent_job(api, "sendgrid", "abc123")
    batch = [_sg_event("processed", "e1"), _sg_event("delivered", "e2"), _sg_event("open", "e3")]
    answer = await api.client.post("/webhooks/sendgrid", **_signed(signing_key, batch))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 2, "applied": 2, "duplicates": 0, "stale": 0, "unknown": 0}
    late = [_sg_event("processed", "e4")]
    await api.client.post("/webhooks/sendgrid", **_signed(signing_key, late))
    assert (await _job(api, job_id))["deliveryStatus"] == "delivered"


async def test_a_redelivered_sendgrid_batch_is_applied_once(
    api: Api, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    await _sent_job(api, "sendgrid", "abc123")
    request = _signed(signing_key, [_sg_event("delivered", "e1")])
    await api.client.post("/webhooks/sendgrid", **request)
    again = await api.client.post("/webhooks/sendgrid", **request)
    assert again.json()["duplicates"] == 1 and again.json()["applied"] == 0


async def test_events_find_their_job_by_the_job_id_custom_argument(
    api: Api, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    job_id = await _sent_job(api, "sendgrid", "zzz")
    event = _sg_event("dropped", "e1", message_id="other", commq_job_id=job_id)
    await api.client.post("/webhooks/sendgrid", **_signed(signing_key, [event]))
    assert (await _job(api, job_id))["deliveryStatus"] == "dropped"


async def test_a_hard_bounce_suppresses_the_recipient_and_later_jobs_fail(
    api: Api, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    job_id = await _sent_job(api, "sendgrid", "abc123")
    bounce = _sg_event("bounce", "e1", type="bounce", reason="550 5.1.1 no such user")
    await api.client.post("/webhooks/sendgrid", **_signed(signing_key, [bounce]))
    assert (await _job(api, job_id))["deliveryStatus"] == "bounced"
    listed = await api.client.get(
        "/communication-queue/suppressions", headers=api.as_("acme_manager")
    )
    [entry] = listed.json()["items"]
    assert (entry["recipient"], entry["reason"], entry["jobId"]) == (
        "ana@example.com",
        "hard_bounce",
        job_id,
    )
    later = await api.enqueue()
    await api.container.dispatcher().drain(None)
    refused = await _job(api, later["id"])
    assert refused["status"] == "failed"
    assert refused["lastError"].startswith("recipient is suppressed: hard bounce on ")


async def test_a_spam_report_suppresses_without_changing_the_status(
    api: Api, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    job_id = await _sent_job(api, "sendgrid", "abc123")
    await api.client.post(
        "/webhooks/sendgrid", **_signed(signing_key, [_sg_event("spamreport", "e1")])
    )
    assert (await _job(api, job_id))["deliveryStatus"] is None
    found = await SqlSuppressionStore(api.container.engine).list_suppressions("acme", 10, None)
    assert [s.reason.value for s in found.items] == ["spam_report"]


async def test_forged_or_unsigned_sendgrid_events_are_refused_and_change_nothing(
    api: Api, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    job_id = await _sent_job(api, "sendgrid", "abc123")
    request = _signed(signing_key, [_sg_event("bounce", "e1", type="bounce")])
    tampered = request["content"].replace(b"bounce", b"delivered", 1)
    forged = await api.client.post(
        "/webhooks/sendgrid", content=tampered, headers=request["headers"]
    )
    assert forged.status_code == 401
    other_key = ec.generate_private_key(ec.SECP256R1())
    impostor = _signed(other_key, [_sg_event("bounce", "e2", type="bounce")])
    assert (await api.client.post("/webhooks/sendgrid", **impostor)).status_code == 401
    unsigned = await api.client.post("/webhooks/sendgrid", content=request["content"])
    assert unsigned.status_code == 401
    junk = {**request["headers"], SG_SIGNATURE: "not base64!"}
    junk_answer = await api.client.post(
        "/webhooks/sendgrid", content=request["content"], headers=junk
    )
    assert junk_answer.status_code == 401
    assert (await _job(api, job_id))["deliveryStatus"] is None
    found = await SqlSuppressionStore(api.container.engine).list_suppressions(None, 10, None)
    assert found.items == []


def _twilio(params: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, Any]:
    url = "http://commq.test/webhooks/twilio"
    signature = twilio_signature(token, url, list(params.items()))
    return {
        "content": urlencode(params).encode(),
        "headers": {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    }


async def test_signed_twilio_callbacks_move_delivery_status(api: Api) -> None:
    job_id = await _sent_job(
        api, "twilio", "SM123", channel="sms", recipient="+14155550100", payload={"body": "hi"}
    )
    sent = {"MessageSid": "SM123", "MessageStatus": "sent", "AccountSid": "AC1", "To": "+1415"}
    answer = await api.client.post("/webhooks/twilio", **_twilio(sent))
    assert answer.status_code == 200, answer.text
    assert (await _job(api, job_id))["deliveryStatus"] == "accepted"
    delivered = {**sent, "MessageStatus": "delivered"}
    await api.client.post("/webhooks/twilio", **_twilio(delivered))
    await api.client.post("/webhooks/twilio", **_twilio({**sent, "MessageStatus": "queued"}))
    assert (await _job(api, job_id))["deliveryStatus"] == "delivered"


async def test_a_twilio_stop_error_suppresses_the_number(api: Api) -> None:
    job_id = await _sent_job(
        api, "twilio", "SM9", channel="sms", recipient="+14155550100", payload={"body": "hi"}
    )
    failed = {"MessageSid": "SM9", "MessageStatus": "failed", "ErrorCode": "21610"}
    await api.client.post("/webhooks/twilio", **_twilio(failed))
    assert (await _job(api, job_id))["deliveryStatus"] == "undelivered"
    found = await SqlSuppressionStore(api.container.engine).list_suppressions("acme", 10, None)
    assert [(s.channel, s.recipient, s.reason.value) for s in found.items] == [
        (Channel.SMS, "+14155550100", "stop")
    ]


async def test_forged_twilio_callbacks_are_refused_and_change_nothing(api: Api) -> None:
    job_id = await _sent_job(
        api, "twilio", "SM5", channel="sms", recipient="+14155550100", payload={"body": "hi"}
    )
    params = {"MessageSid": "SM5", "MessageStatus": "delivered"}
    wrong_token = await api.client.post("/webhooks/twilio", **_twilio(params, token="guess"))
    assert wrong_token.status_code == 401
    request = _twilio(params)
    changed = urlencode({**params, "MessageStatus": "undelivered"}).encode()
    tampered = await api.client.post(
        "/webhooks/twilio", content=changed, headers=request["headers"]
    )
    assert tampered.status_code == 401
    bare = await api.client.post("/webhooks/twilio", content=request["content"])
    assert bare.status_code == 401
    assert (await _job(api, job_id))["deliveryStatus"] is None


async def test_callbacks_of_an_unconfigured_provider_are_refused_for_now(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with running(base_settings(sqlite_url, tmp_path)) as plain:
        answer = await plain.client.post("/webhooks/sendgrid", content=b"[]")
        assert answer.status_code == 503
        assert "COMMQ_SENDGRID_WEBHOOK_PUBLIC_KEY" in answer.json()["detail"]


@pytest.fixture
async def api_on_both(
    database_url: str, tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey
) -> AsyncIterator[Api]:
    async with running(_verifying(database_url, tmp_path, signing_key)) as built:
        yield built


@pytest.mark.parametrize(
    "event",
    [
        {"event": "delivered", "commq_job_id": "j" * 60, "sg_event_id": "e1"},
        {"event": "delivered", "sg_event_id": "e\u00002", "sg_message_id": "m\u0000.x"},
        {"event": "bounce", "commq_job_id": "\u0000", "sg_event_id": "e3"},
        {"event": "delivered", "sg_event_id": ["a"] * 3, "sg_message_id": {"x": 1}},
        # Lone surrogates: JSON can escape them, UTF-8 (so neither database) cannot hold them.
        {"event": "delivered", "sg_event_id": "e\ud800", "commq_job_id": "\udfff"},
        {"event": "delivered", "sg_event_id": "e5", "sg_message_id": "\ud800.x"},
        # Beyond what a PostgreSQL index entry holds (2704 bytes), and not compressible.
        {"event": "delivered", "sg_event_id": secrets.token_urlsafe(6000)},
    ],
    ids=[
        "long-job-id",
        "nul-ids",
        "nul-job-id",
        "odd-types",
        "surrogates",
        "surrogate-msg",
        "huge-id",
    ],
)
async def test_a_signed_sendgrid_event_of_odd_fields_is_never_a_500(
    api_on_both: Api, signing_key: ec.EllipticCurvePrivateKey, event: dict[str, Any]
) -> None:
    response = await api_on_both.client.post("/webhooks/sendgrid", **_signed(signing_key, [event]))
    assert response.status_code == 200, response.text
    assert response.json()["unknown"] == 1


async def test_a_signed_sendgrid_body_nested_too_deep_is_400(
    api: Api, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    signature = signing_key.sign(b"1777777777" + body, ec.ECDSA(hashes.SHA256()))
    headers = {SG_SIGNATURE: base64.b64encode(signature).decode(), SG_TIMESTAMP: "1777777777"}
    response = await api.client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_signed_twilio_callback_with_a_nul_is_never_a_500(api_on_both: Api) -> None:
    url = "http://commq.test/webhooks/twilio"
    params = [("MessageSid", "SM\u00001"), ("MessageStatus", "delivered")]
    headers = {
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, params),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = await api_on_both.client.post(url, content=urlencode(params), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["unknown"] == 1


async def test_a_signed_twilio_callback_with_a_huge_sid_is_never_a_500(api_on_both: Api) -> None:
    url = "http://commq.test/webhooks/twilio"
    params = [("MessageSid", "SM" + secrets.token_hex(3000)), ("MessageStatus", "delivered")]
    headers = {
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, params),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = await api_on_both.client.post(url, content=urlencode(params), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["unknown"] == 1
    again = await api_on_both.client.post(url, content=urlencode(params), headers=headers)
    assert again.json()["duplicates"] == 1


@pytest.mark.parametrize("body", [b"MessageSid=SM1&To=\xff\xfe", b"\x80" * 10])
async def test_an_unsigned_twilio_callback_is_401_whatever_its_body(api: Api, body: bytes) -> None:
    # The signature is the callback's authentication: it is judged before the body.
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await api.client.post("/webhooks/twilio", content=body, headers=headers)
    assert response.status_code == 401, response.text
    forged = await api.client.post(
        "/webhooks/twilio", content=body, headers={**headers, "X-Twilio-Signature": "abc="}
    )
    assert forged.status_code == 401, forged.text
