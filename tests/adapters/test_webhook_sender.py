"""The webhook sender against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import pytest

from commq.adapters.senders import HostGuard, WebhookSender, parse_retry_after
from commq.adapters.senders.hostguard import IPAddress
from commq.domain.jobs import Channel, Job
from commq.domain.outcomes import SendOutcome

if TYPE_CHECKING:
    from conftest import HttpPeer

JobFactory = Callable[..., Job]


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    """A sender whose guard allows 127.0.0.1 (which is itself the allow-list test)."""
    webhook = WebhookSender(HostGuard("127.0.0.1"), timeout=2.0)
    yield webhook
    await webhook.close()


def webhook_job(make_job: JobFactory, url: str, **payload: Any) -> Job:
    body = payload.pop("body", {"event": "order.paid", "orderId": 42})
    return make_job(Channel.WEBHOOK, recipient=url, payload={"body": body, **payload})


# ---------------------------------------------------------------- success


async def test_the_body_is_posted_as_json_with_custom_headers(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    headers = {"X-Signature": "sha256=abc", "Authorization": "Bearer t0k3n"}
    job = webhook_job(make_job, http_server.url("/ok?source=commq"), headers=headers)

    result = await sender.send(job)

    assert result.outcome is SendOutcome.OK
    assert result.provider == "webhook"
    assert result.provider_message_id == "req-123"
    [request] = http_server.requests
    assert request.method == "POST"
    assert request.path == "/ok?source=commq"
    assert request.json() == {"event": "order.paid", "orderId": 42}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-signature"] == "sha256=abc"
    assert request.headers["authorization"] == "Bearer t0k3n"
    assert request.headers["webhook-id"] == job.id
    assert request.headers["host"] == f"127.0.0.1:{http_server.port}"


async def test_overrides_of_framing_and_hop_by_hop_headers_are_dropped(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    headers = {
        "Host": "evil.test",
        "Content-Type": "text/plain",
        "Content-Length": "1",
        "Transfer-Encoding": "chunked",
        "Connection": "upgrade",
        "webhook-id": "forged",
        "X-Kept": "yes",
    }
    job = webhook_job(make_job, http_server.url("/ok"), headers=headers)

    result = await sender.send(job)

    assert result.outcome is SendOutcome.OK
    [request] = http_server.requests
    assert request.headers["host"] == f"127.0.0.1:{http_server.port}"
    assert request.headers["content-type"] == "application/json"
    assert "transfer-encoding" not in request.headers
    assert request.headers["webhook-id"] == job.id
    assert request.headers["x-kept"] == "yes"
    assert request.json() == {"event": "order.paid", "orderId": 42}


async def test_a_2xx_without_request_id_has_no_provider_message_id(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    result = await sender.send(webhook_job(make_job, http_server.url("/no-content")))

    assert result.outcome is SendOutcome.OK
    assert result.provider_message_id is None


async def test_a_host_allowed_by_name_is_reached_with_its_name_in_the_host_header(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    sender = WebhookSender(HostGuard("localhost"), timeout=2.0)
    url = f"http://localhost:{http_server.port}/ok"

    result = await sender.send(webhook_job(make_job, url))
    await sender.close()

    assert result.outcome is SendOutcome.OK
    assert http_server.requests[0].headers["host"] == f"localhost:{http_server.port}"


class FixedAnswerGuard(HostGuard):
    """A guard allowing 127.0.0.0/8 whose "DNS" answers with fixed addresses."""

    def __init__(self, *answer: str) -> None:
        super().__init__("127.0.0.0/8")
        self.answer = [ipaddress.ip_address(a) for a in answer]

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        return self.answer


async def test_plain_http_connects_to_the_checked_addresses_in_order(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    # hooks.test resolves nowhere: reaching the server proves no second lookup happened,
    # and 127.0.0.2 (nothing listens there) proves the next address is tried.
    sender = WebhookSender(FixedAnswerGuard("127.0.0.2", "127.0.0.1"), timeout=2.0)
    url = f"http://hooks.test:{http_server.port}/ok"

    result = await sender.send(webhook_job(make_job, url))
    await sender.close()

    assert result.outcome is SendOutcome.OK
    assert http_server.requests[0].headers["host"] == f"hooks.test:{http_server.port}"


# ---------------------------------------------------------------- classification


async def test_a_redirect_is_not_followed_and_is_permanent(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    result = await sender.send(webhook_job(make_job, http_server.url("/redirect")))

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error is not None
    assert result.error.startswith("HTTP 302: redirects are not followed")
    assert len(http_server.requests) == 1


async def test_a_503_is_transient_and_honours_retry_after_seconds(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    result = await sender.send(webhook_job(make_job, http_server.url("/unavailable")))

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error == "HTTP 503: down for maintenance"
    assert result.retry_after == timedelta(seconds=120)


async def test_a_429_is_transient_and_honours_retry_after_as_a_date(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    http_server.set_retry_after_date(format_datetime(later, usegmt=True))

    result = await sender.send(webhook_job(make_job, http_server.url("/rate-limited")))

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.retry_after is not None
    assert timedelta(minutes=9) < result.retry_after <= timedelta(minutes=10)


@pytest.mark.parametrize(
    ("path", "outcome"),
    [
        ("/request-timeout", SendOutcome.TRANSIENT),
        ("/gone", SendOutcome.PERMANENT),
        ("/nowhere", SendOutcome.PERMANENT),
    ],
)
async def test_4xx_answers_are_classified(
    make_job: JobFactory,
    http_server: HttpPeer,
    sender: WebhookSender,
    path: str,
    outcome: SendOutcome,
) -> None:
    result = await sender.send(webhook_job(make_job, http_server.url(path)))

    assert result.outcome is outcome
    assert result.retry_after is None


async def test_an_error_quotes_the_status_and_the_start_of_the_body(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    result = await sender.send(webhook_job(make_job, http_server.url("/bad")))

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error is not None
    assert result.error.startswith("HTTP 400: invalid event: xxx")
    assert len(result.error) == len("HTTP 400: ") + 200


async def test_a_binary_error_body_is_quoted_as_storable_text(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    # PostgreSQL text cannot hold NUL: a lastError with one would never be recorded.
    result = await sender.send(webhook_job(make_job, http_server.url("/binary")))

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error == "HTTP 500: crashed \ufffd\ufffd"


async def test_a_huge_body_is_read_only_up_to_the_cap(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    started = time.monotonic()

    result = await sender.send(webhook_job(make_job, http_server.url("/huge")))

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error == "HTTP 500: " + "E" * 200
    assert time.monotonic() - started < 1.5  # 100 MiB would take longer than the cap


async def test_no_answer_within_the_timeout_is_ambiguous(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    sender = WebhookSender(HostGuard("127.0.0.1"), timeout=0.3)

    result = await sender.send(webhook_job(make_job, http_server.url("/slow")))
    await sender.close()

    assert result.outcome is SendOutcome.AMBIGUOUS
    assert result.error is not None
    assert "timed out after the request was sent" in result.error
    assert len(http_server.requests) == 1


async def test_a_hang_up_after_the_request_is_ambiguous(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender
) -> None:
    result = await sender.send(webhook_job(make_job, http_server.url("/hang-up")))

    assert result.outcome is SendOutcome.AMBIGUOUS


async def test_a_refused_connection_is_transient(
    make_job: JobFactory, sender: WebhookSender, closed_port: int
) -> None:
    result = await sender.send(webhook_job(make_job, f"http://127.0.0.1:{closed_port}/"))

    assert result.outcome is SendOutcome.TRANSIENT
    assert result.error is not None
    assert "before the request was sent" in result.error


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0x7f.1/",
    ],
)
async def test_internal_urls_are_permanent_without_an_allow_list(
    make_job: JobFactory, url: str
) -> None:
    sender = WebhookSender(HostGuard(""), timeout=1.0)

    result = await sender.send(webhook_job(make_job, url))
    await sender.close()

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error is not None
    assert "COMMQ_WEBHOOK_ALLOWED_HOSTS" in result.error


async def test_the_guard_runs_before_any_request(
    make_job: JobFactory, http_server: HttpPeer
) -> None:
    sender = WebhookSender(HostGuard("10.0.0.0/8"), timeout=1.0)

    result = await sender.send(webhook_job(make_job, http_server.url("/ok")))
    await sender.close()

    assert result.outcome is SendOutcome.PERMANENT
    assert http_server.requests == []


@pytest.mark.parametrize(
    "payload",
    [
        {"body": {"n": float("nan")}},
        {"body": {}, "headers": {"X-Evil": "a\r\nInjected: 1"}},
        {"body": {}, "headers": {"Bad Name": "v"}},
        {"body": {}, "headers": {"X-Name": "Jörg"}},
        {"body": {}, "headers": {"X-Number": 1}},
        {"body": {}, "headers": ["not", "a", "dict"]},
    ],
)
async def test_unsendable_payloads_are_permanent(
    make_job: JobFactory, http_server: HttpPeer, sender: WebhookSender, payload: dict[str, Any]
) -> None:
    job = make_job(Channel.WEBHOOK, recipient=http_server.url("/ok"), payload=payload)

    result = await sender.send(job)

    assert result.outcome is SendOutcome.PERMANENT
    assert http_server.requests == []


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", timedelta(0)),
        ("30", timedelta(seconds=30)),
        (" 45 ", timedelta(seconds=45)),
        ("999999999999999999999", timedelta(days=1)),
        ("9" * 5000, timedelta(days=1)),
        ("soon", None),
        ("Wed, 01 May 2024 12:00:00 2200000000", None),
        ("Wed, 01 May 99999 12:00:00 GMT", None),
        ("-5", None),
        ("Wed, 01 May 2024 12:02:00 GMT", timedelta(minutes=2)),
        ("Wed, 01 May 2024 11:00:00 GMT", timedelta(0)),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(
    value: str | None, expected: timedelta | None
) -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    assert parse_retry_after(value, now=now) == expected
