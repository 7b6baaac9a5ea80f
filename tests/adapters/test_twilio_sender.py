"""The Twilio sender against a fake Twilio on 127.0.0.1 that answers as Twilio documents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from commq.adapters.senders import TwilioSender
from commq.domain.jobs import Channel, Job
from commq.domain.outcomes import Blame, SendOutcome
from commq.domain.suppression import SuppressionReason, suppression_from_result
from fakes import Answer, Disconnect, Fail, FakeTwilio, Hang, RateLimited

JobFactory = Callable[..., Job]
FROM = "+15005550006"


def sms(make_job: JobFactory, to: str = "+15551234567", body: str = "Your code is 123456") -> Job:
    return make_job(Channel.SMS, recipient=to, payload={"body": body})


def twilio_sender(fake: FakeTwilio, timeout: float = 2.0) -> TwilioSender:
    return TwilioSender(
        fake.account_sid, fake.auth_token, FROM, base_url=fake.base_url, timeout=timeout
    )


@pytest.fixture
async def sender(fake_twilio: FakeTwilio) -> AsyncIterator[TwilioSender]:
    twilio = twilio_sender(fake_twilio)
    yield twilio
    await twilio.close()


# ---------------------------------------------------------------- success


async def test_a_message_is_created_and_its_sid_kept(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    result = await sender.send(sms(make_job))

    assert result.outcome is SendOutcome.OK
    assert result.provider == "twilio"
    [created] = fake_twilio.accepted
    assert result.provider_message_id == created["sid"]
    assert created["sid"].startswith("SM")
    [request] = fake_twilio.requests
    assert request.form() == {"To": "+15551234567", "From": FROM, "Body": "Your code is 123456"}
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_a_messaging_service_sid_is_sent_as_messaging_service_sid(
    make_job: JobFactory, fake_twilio: FakeTwilio
) -> None:
    service = "MG" + "1" * 32
    sender = TwilioSender(
        fake_twilio.account_sid,
        fake_twilio.auth_token,
        service,
        base_url=fake_twilio.base_url,
        status_callback="https://commq.example.com/webhooks/twilio",
    )

    result = await sender.send(sms(make_job))
    await sender.close()

    assert result.outcome is SendOutcome.OK
    form = fake_twilio.requests[0].form()
    assert form["MessagingServiceSid"] == service
    assert "From" not in form
    assert form["StatusCallback"] == "https://commq.example.com/webhooks/twilio"


# ---------------------------------------------------------------- the message's own faults


@pytest.mark.parametrize("code", [21211, 21610, 21612, 21614, 21635])
async def test_recipient_errors_are_permanent_and_name_the_code(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender, code: int
) -> None:
    fake_twilio.for_recipient("+15550001111", Fail(400, code))

    result = await sender.send(sms(make_job, to="+15550001111"))

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.MESSAGE)
    assert result.error is not None
    assert result.error.startswith(f"Twilio {code}: ")
    assert f"https://www.twilio.com/docs/errors/{code}" in result.error


async def test_a_stop_names_21610_for_the_suppression_list(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    fake_twilio.for_recipient("+15550002222", Fail(400, 21610))

    stopped = await sender.send(sms(make_job, to="+15550002222"))
    other = await sender.send(sms(make_job, to="+15550003333"))

    assert stopped.error == (
        "Twilio 21610: Attempt to send to unsubscribed recipient "
        "(HTTP 400, https://www.twilio.com/docs/errors/21610)"
    )
    assert other.outcome is SendOutcome.OK


async def test_a_number_twilio_cannot_parse_is_21211(
    make_job: JobFactory, sender: TwilioSender
) -> None:
    result = await sender.send(sms(make_job, to="555-1234"))

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error is not None
    assert result.error.startswith("Twilio 21211: The 'To' number 555-1234 is not a valid")


@pytest.mark.parametrize("payload", [{}, {"body": ""}, {"body": 42}])
async def test_a_missing_body_is_permanent_without_a_request(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender, payload: dict[str, object]
) -> None:
    result = await sender.send(make_job(Channel.SMS, recipient="+15551234567", payload=payload))

    assert result.outcome is SendOutcome.PERMANENT
    assert fake_twilio.requests == []


# ---------------------------------------------------------------- provider faults and limits


async def test_a_wrong_auth_token_is_a_provider_fault(
    make_job: JobFactory, fake_twilio: FakeTwilio
) -> None:
    sender = TwilioSender(fake_twilio.account_sid, "wrong", FROM, base_url=fake_twilio.base_url)

    result = await sender.send(sms(make_job))
    await sender.close()

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.PROVIDER)
    assert result.error is not None
    assert result.error.startswith("Twilio 20003: Authenticate (HTTP 401")
    assert "wrong" not in result.error


async def test_too_many_requests_is_a_rate_limit_that_is_safe_to_retry(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    fake_twilio.set_mode(RateLimited(reset_in=3))

    result = await sender.send(sms(make_job))

    assert (result.outcome, result.blame) == (SendOutcome.TRANSIENT, Blame.RATE_LIMIT)
    assert result.retry_after == timedelta(seconds=3)
    assert result.error is not None
    assert result.error.startswith("Twilio 20429: Too Many Requests (HTTP 429")


async def test_a_storm_of_429s_under_concurrency_is_all_rate_limits(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    fake_twilio.script(*[RateLimited(1)] * 8)

    results = await asyncio.gather(*(sender.send(sms(make_job)) for _ in range(10)))

    blames = sorted(r.blame for r in results if r.outcome is SendOutcome.TRANSIENT)
    assert blames == [Blame.RATE_LIMIT] * 8
    assert sum(r.outcome is SendOutcome.OK for r in results) == 2
    assert len(fake_twilio.accepted) == 2


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_ambiguous_because_the_message_may_exist(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender, status: int
) -> None:
    fake_twilio.set_mode(Fail(status))

    result = await sender.send(sms(make_job))

    assert (result.outcome, result.blame) == (SendOutcome.AMBIGUOUS, Blame.PROVIDER)
    assert result.error is not None
    assert result.error.startswith(f"Twilio {20000 + status}: ")


async def test_a_5xx_without_a_twilio_body_is_ambiguous_too(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    # A load balancer's own page: no Twilio error code in it.
    fake_twilio.set_mode(Answer(502, b"<html><h1>502 Bad Gateway</h1></html>"))

    result = await sender.send(sms(make_job))

    assert (result.outcome, result.blame) == (SendOutcome.AMBIGUOUS, Blame.PROVIDER)
    assert result.error == "Twilio HTTP 502: <html><h1>502 Bad Gateway</h1></html>"


async def test_a_refused_connection_is_a_safe_transient_outage(
    make_job: JobFactory, closed_port: int
) -> None:
    sender = TwilioSender("AC1", "t", FROM, base_url=f"http://127.0.0.1:{closed_port}")

    result = await sender.send(sms(make_job))
    await sender.close()

    assert (result.outcome, result.blame) == (SendOutcome.TRANSIENT, Blame.PROVIDER)
    assert result.error is not None
    assert "before the request was sent" in result.error


async def test_no_answer_after_the_request_was_sent_is_ambiguous(
    make_job: JobFactory, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.set_mode(Hang())
    sender = twilio_sender(fake_twilio, timeout=0.3)

    started = time.monotonic()
    result = await sender.send(sms(make_job))
    await sender.close()

    assert time.monotonic() - started < 5  # Hang lasts 60 s; a busy machine needs room
    assert (result.outcome, result.blame) == (SendOutcome.AMBIGUOUS, Blame.PROVIDER)
    assert result.error is not None
    assert "after the request was sent; Twilio may have created the message" in result.error
    assert len(fake_twilio.requests) == 1


async def test_a_connection_dropped_after_the_request_is_ambiguous(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    fake_twilio.set_mode(Disconnect())

    result = await sender.send(sms(make_job))

    assert result.outcome is SendOutcome.AMBIGUOUS


def test_missing_credentials_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="COMMQ_TWILIO_ACCOUNT_SID"):
        TwilioSender("", "token", FROM)
    with pytest.raises(ValueError, match="COMMQ_TWILIO_FROM"):
        TwilioSender("AC1", "token", "")


# ---------------------------------------------------------------- odd answers


async def test_only_the_code_21610_suppresses_not_a_number_that_contains_it(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    # Twilio's messages quote the To number; this one has 21610 among its digits.
    invalid = "The 'To' number +14155521610 is not a valid phone number."
    fake_twilio.for_recipient("+14155521610", Fail(400, 21211, message=invalid))
    fake_twilio.for_recipient("+15550002222", Fail(400, 21610))
    invalid_job = sms(make_job, to="+14155521610")
    stopped_job = sms(make_job, to="+15550002222")

    invalid_result = await sender.send(invalid_job)
    stopped_result = await sender.send(stopped_job)

    assert invalid_result.outcome is SendOutcome.PERMANENT
    assert suppression_from_result(invalid_job, invalid_result) is None
    stop = suppression_from_result(stopped_job, stopped_result)
    assert stop is not None and stop.reason is SuppressionReason.STOP


async def test_a_created_message_with_a_body_nested_past_the_parsers_depth_is_still_sent(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    # Raising here would count as a transient failure and text the recipient again.
    fake_twilio.set_mode(Answer(201, b"[" * 100_000))

    result = await sender.send(sms(make_job))

    assert result.outcome is SendOutcome.OK
    assert result.provider_message_id is None


async def test_an_error_body_nested_past_the_parsers_depth_is_quoted_not_raised(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    fake_twilio.set_mode(Answer(400, b"[" * 100_000))

    result = await sender.send(sms(make_job))

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.MESSAGE)
    assert result.error is not None
    assert result.error.startswith("Twilio HTTP 400: [[[")


async def test_an_error_text_holds_no_nul_nor_lone_surrogate(
    make_job: JobFactory, fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    fake_twilio.set_mode(Fail(400, 21614, message="not\u0000 a \udc80mobile"))

    result = await sender.send(sms(make_job))

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error == (
        "Twilio 21614: not a \ufffdmobile (HTTP 400, https://www.twilio.com/docs/errors/21614)"
    )
