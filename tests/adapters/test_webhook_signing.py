"""Standard Webhooks signatures, checked with the reference verifier and keys made here."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from commq.adapters.senders import (
    HostGuard,
    WebhookSender,
    new_secret,
    parse_secret,
    parse_secrets,
)
from commq.domain.jobs import Channel, Job

if TYPE_CHECKING:
    from conftest import HttpPeer, Recorded

JobFactory = Callable[..., Job]


def webhook_job(
    make_job: JobFactory, url: str, business_id: str = "biz-1", **payload: object
) -> Job:
    body = {"body": {"event": "order.paid", "orderId": 42}, **payload}
    return make_job(Channel.WEBHOOK, recipient=url, payload=body, business_id=business_id)


def verified(secret: str, request: Recorded) -> object:
    """What the reference verifier makes of a received request (raises when it refuses it)."""
    return Webhook(secret).verify(request.body, request.headers)


async def send(sender: WebhookSender, job: Job) -> None:
    result = await sender.send(job)
    assert result.error is None


async def test_a_signed_webhook_verifies_with_the_reference_verifier(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    secret = new_secret()
    sender = WebhookSender(HostGuard("127.0.0.1"), secrets={"biz-1": parse_secret(secret)})
    job = webhook_job(make_job, http_server.url("/ok"))

    await send(sender, job)
    await sender.close()

    [request] = http_server.requests
    assert verified(secret, request) == {"event": "order.paid", "orderId": 42}
    assert request.headers["webhook-id"] == job.id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert request.headers["webhook-signature"].startswith("v1,")


async def test_a_retry_keeps_the_webhook_id_and_signs_afresh(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    secret = new_secret()
    sender = WebhookSender(HostGuard("127.0.0.1"), secrets={"biz-1": parse_secret(secret)})
    job = webhook_job(make_job, http_server.url("/ok"))

    await send(sender, job)
    await send(sender, job)
    await sender.close()

    first, second = http_server.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == job.id
    verified(secret, first)
    verified(secret, second)


async def test_another_secret_or_a_changed_body_does_not_verify(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    secret = new_secret()
    sender = WebhookSender(HostGuard("127.0.0.1"), secrets={"biz-1": parse_secret(secret)})

    await send(sender, webhook_job(make_job, http_server.url("/ok")))
    await sender.close()

    [request] = http_server.requests
    with pytest.raises(WebhookVerificationError):
        verified(new_secret(), request)
    request.body = request.body.replace(b"42", b"43")
    with pytest.raises(WebhookVerificationError):
        verified(secret, request)


async def test_during_a_rotation_both_secrets_verify(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    old, new = new_secret(), new_secret()
    secrets = parse_secrets(f"biz-1={old}|{new}")
    sender = WebhookSender(HostGuard("127.0.0.1"), secrets=secrets)

    await send(sender, webhook_job(make_job, http_server.url("/ok")))
    await sender.close()

    [request] = http_server.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verified(old, request)
    verified(new, request)


async def test_each_business_signs_with_its_own_secret_and_others_go_unsigned(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    secret_a, secret_b = new_secret(), new_secret()
    keys = {"biz-a": parse_secret(secret_a), "biz-b": parse_secret(secret_b)}
    sender = WebhookSender(HostGuard("127.0.0.1"), secrets=keys.get)
    url = http_server.url("/ok")

    for business in ("biz-a", "biz-b", "biz-c"):
        await send(sender, webhook_job(make_job, url, business_id=business))
    await sender.close()

    signed_a, signed_b, unsigned = http_server.requests
    verified(secret_a, signed_a)
    verified(secret_b, signed_b)
    with pytest.raises(WebhookVerificationError):
        verified(secret_a, signed_b)
    assert "webhook-signature" not in unsigned.headers
    assert "webhook-timestamp" not in unsigned.headers
    assert unsigned.headers["webhook-id"]


async def test_a_job_cannot_forge_the_signature_headers(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    forged = {"webhook-signature": "v1,Zm9yZ2Vk", "Webhook-Timestamp": "1"}
    sender = WebhookSender(HostGuard("127.0.0.1"))

    await send(sender, webhook_job(make_job, http_server.url("/ok"), headers=forged))
    await sender.close()

    [request] = http_server.requests
    assert "webhook-signature" not in request.headers
    assert "webhook-timestamp" not in request.headers


# ---------------------------------------------------------------- secrets


def test_a_new_secret_has_the_whsec_form_and_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_")
    assert len(parse_secret(first)) == 32
    assert first != second


@pytest.mark.parametrize(
    "text",
    [
        "whsec_not*base64",
        "whsec_" + base64.b64encode(b"short").decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
        "",
    ],
)
def test_bad_secrets_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        parse_secret(text)


def test_a_secret_without_prefix_or_padding_is_read() -> None:
    key = bytes(range(25))
    unpadded = base64.b64encode(key).decode().rstrip("=")

    assert parse_secret(unpadded) == key
    assert parse_secret(f"whsec_{unpadded}") == key


@pytest.mark.parametrize("text", ["whsec_abc", "=whsec_x", "biz-1"])
def test_a_malformed_secret_list_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_secrets(text)


def test_a_secret_list_maps_businesses_to_their_secrets() -> None:
    a, b, c = new_secret(), new_secret(), new_secret()

    parsed = parse_secrets(f" biz-1={a}|{b} , biz-2={c},")

    assert parsed == {
        "biz-1": (parse_secret(a), parse_secret(b)),
        "biz-2": (parse_secret(c),),
    }
