"""The SendGrid sender against a fake SendGrid on 127.0.0.1 that answers as SendGrid documents."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from commq.adapters.senders import SendGridSender
from commq.domain.jobs import Job
from commq.domain.outcomes import Blame, SendOutcome
from fakes import Answer, Disconnect, Fail, FakeSendGrid, Hang, Ok, RateLimited, Slow

JobFactory = Callable[..., Job]
FROM = "Commq <noreply@commq.test>"


@pytest.fixture
async def sender(fake_sendgrid: FakeSendGrid) -> AsyncIterator[SendGridSender]:
    sendgrid = SendGridSender(
        fake_sendgrid.api_key, email_from=FROM, base_url=fake_sendgrid.base_url, timeout=2.0
    )
    yield sendgrid
    await sendgrid.close()


# ---------------------------------------------------------------- success


async def test_a_message_is_accepted_and_its_x_message_id_kept(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    job = make_job(payload={"subject": "Receipt", "text": "Thanks!", "html": "<p>Thanks!</p>"})

    result = await sender.send(job)

    assert result.outcome is SendOutcome.OK
    assert result.provider == "sendgrid"
    [(message_id, body)] = fake_sendgrid.accepted
    assert result.provider_message_id == message_id
    assert body == {
        "personalizations": [{"to": [{"email": "ada@example.com"}]}],
        "from": {"email": "noreply@commq.test", "name": "Commq"},
        "subject": "Receipt",
        "content": [
            {"type": "text/plain", "value": "Thanks!"},
            {"type": "text/html", "value": "<p>Thanks!</p>"},
        ],
        "custom_args": {"commq_job_id": job.id},
    }
    [request] = fake_sendgrid.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"


async def test_reply_to_headers_and_the_payload_sender_are_passed_on(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    payload = {
        "subject": "Hi",
        "html": "<b>hi</b>",
        "from": "Shop <shop@example.org>",
        "replyTo": "help@example.org",
        "headers": {"X-Campaign": "spring"},
    }

    result = await sender.send(make_job(recipient="Ada <ada@example.com>", payload=payload))

    assert result.outcome is SendOutcome.OK
    [(_, body)] = fake_sendgrid.accepted
    assert body["from"] == {"email": "shop@example.org", "name": "Shop"}
    assert body["reply_to"] == {"email": "help@example.org"}
    assert body["headers"] == {"X-Campaign": "spring"}
    assert body["personalizations"] == [{"to": [{"email": "ada@example.com", "name": "Ada"}]}]
    assert body["content"] == [{"type": "text/html", "value": "<b>hi</b>"}]


# ---------------------------------------------------------------- the message's own faults


async def test_a_payload_the_smtp_path_would_refuse_is_permanent_without_a_request(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    payload = {"subject": "s", "text": "t", "headers": {"Bcc": "everyone@example.com"}}

    result = await sender.send(make_job(payload=payload))

    assert result.outcome is SendOutcome.PERMANENT
    assert result.blame is Blame.MESSAGE
    assert fake_sendgrid.requests == []


async def test_a_400_is_permanent_and_quotes_sendgrids_messages(
    make_job: JobFactory, sender: SendGridSender
) -> None:
    # No subject: the fake answers as SendGrid does, with its own wording and field.
    result = await sender.send(make_job(payload={"text": "no subject"}))

    assert result.outcome is SendOutcome.PERMANENT
    assert result.blame is Blame.MESSAGE
    assert result.error is not None
    assert result.error.startswith("SendGrid 400: The subject is required.")
    assert "(field subject)" in result.error


async def test_a_413_is_permanent_for_the_message(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.set_mode(Fail(413))

    result = await sender.send(make_job())

    assert result.outcome is SendOutcome.PERMANENT
    assert result.blame is Blame.MESSAGE
    assert result.error == (
        "SendGrid 413: The JSON payload you have included in your request is too large."
    )


# ---------------------------------------------------------------- provider faults


async def test_a_wrong_api_key_is_a_provider_fault_not_the_messages(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid
) -> None:
    sender = SendGridSender("SG.wrong", email_from=FROM, base_url=fake_sendgrid.base_url)

    result = await sender.send(make_job())
    await sender.close()

    assert result.outcome is SendOutcome.PERMANENT
    assert result.blame is Blame.PROVIDER
    assert result.error is not None
    assert "authorization grant is invalid" in result.error
    assert "COMMQ_SENDGRID_API_KEY" in result.error
    assert "SG.wrong" not in result.error


async def test_a_403_without_a_field_is_a_provider_fault(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.set_mode(Fail(403))

    result = await sender.send(make_job())

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.PROVIDER)
    assert result.error is not None
    assert "verified Sender Identity" in result.error


async def test_a_403_about_the_jobs_own_from_fails_that_message_alone(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    # One tenant's unverified address must not look like a SendGrid outage.
    fake_sendgrid.verify_senders("noreply@commq.test")
    payload = {"subject": "Hi", "text": "t", "from": "Shop <shop@tenant.example>"}

    refused = await sender.send(make_job(payload=payload))
    other = await sender.send(make_job())

    assert (refused.outcome, refused.blame) == (SendOutcome.PERMANENT, Blame.MESSAGE)
    assert refused.error is not None
    assert refused.error.startswith(
        "SendGrid 403: The from address does not match a verified Sender Identity."
    )
    assert refused.error.endswith(
        "(field from) (the job's from address shop@tenant.example is not a verified "
        "Sender Identity in SendGrid)"
    )
    assert other.outcome is SendOutcome.OK


@pytest.mark.parametrize(
    "own_from", [None, "Other Name <NoReply@Commq.test>"], ids=["no-from", "same-address"]
)
async def test_a_403_about_the_configured_from_is_a_provider_fault_naming_the_setting(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender, own_from: str | None
) -> None:
    # COMMQ_EMAIL_FROM unverified: every job without a from of its own fails alike.
    fake_sendgrid.verify_senders("someone@commq.test")
    payload = {"subject": "Hi", "text": "t"} | ({"from": own_from} if own_from else {})

    result = await sender.send(make_job(payload=payload))

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.PROVIDER)
    assert result.error is not None
    assert "verified Sender Identity" in result.error
    assert "check COMMQ_EMAIL_FROM" in result.error


_ACCESS_FORBIDDEN = {"errors": [{"field": None, "message": "access forbidden"}]}
_FROM_ERROR = {"field": "from", "message": "The from address does not match...", "help": None}


@pytest.mark.parametrize(
    "answer",
    [
        Answer.json(403, _ACCESS_FORBIDDEN),
        Answer.json(403, {"errors": [_FROM_ERROR, *_ACCESS_FORBIDDEN["errors"]]}),
        Answer.json(403, {"errors": [{"message": "You are temporarily blocked", "field": None}]}),
        Answer.json(403, {"errors": {"field": "from"}}),
        Answer.json(403, {"errors": []}),
        Answer(403, b"<html><body>403 Forbidden</body></html>"),
    ],
    ids=["access-forbidden", "from-and-account", "blocked", "errors-not-a-list", "no-errors",
         "not-json"],
)  # fmt: skip
async def test_a_403_not_solely_about_the_from_field_stays_a_provider_fault(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender, answer: Answer
) -> None:
    # The key lacks mail.send, the account is blocked, a proxy answered: no message can pass.
    fake_sendgrid.set_mode(answer)
    payload = {"subject": "Hi", "text": "t", "from": "shop@tenant.example"}

    result = await sender.send(make_job(payload=payload))

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.PROVIDER)
    assert result.error is not None
    assert result.error.startswith("SendGrid 403: ")
    assert result.error.endswith("may use mail.send)")


async def test_a_long_refusal_is_cut_but_keeps_what_to_fix(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.set_mode(Fail(403, message="x" * 2000, field="from"))
    payload = {"subject": "Hi", "text": "t", "from": "shop@tenant.example"}

    result = await sender.send(make_job(payload=payload))

    assert result.blame is Blame.MESSAGE
    assert result.error is not None
    assert len(result.error) == 500
    assert result.error.endswith("(the job's from address shop@tenant.example is not a "
                                 "verified Sender Identity in SendGrid)")  # fmt: skip


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_a_transient_provider_outage(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender, status: int
) -> None:
    fake_sendgrid.set_mode(Fail(status, retry_after="7"))

    result = await sender.send(make_job())

    assert (result.outcome, result.blame) == (SendOutcome.TRANSIENT, Blame.PROVIDER)
    assert result.retry_after == timedelta(seconds=7)
    assert result.error is not None
    assert result.error.startswith(f"SendGrid {status}:")


async def test_a_burst_of_503s_then_recovery(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.script(Fail(503), Fail(503), Fail(503))

    outcomes = [(await sender.send(make_job())).outcome for _ in range(5)]

    assert outcomes == [SendOutcome.TRANSIENT] * 3 + [SendOutcome.OK] * 2
    assert [r.status for r in fake_sendgrid.requests] == [503, 503, 503, 202, 202]


async def test_a_refused_connection_is_a_transient_outage(
    make_job: JobFactory, closed_port: int
) -> None:
    sender = SendGridSender("SG.k", email_from=FROM, base_url=f"http://127.0.0.1:{closed_port}")

    result = await sender.send(make_job())
    await sender.close()

    assert (result.outcome, result.blame) == (SendOutcome.TRANSIENT, Blame.PROVIDER)
    assert result.error is not None
    assert "before the request was sent" in result.error


# ---------------------------------------------------------------- rate limits


async def test_a_429_waits_until_x_ratelimit_reset(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.set_mode(RateLimited(reset_in=30))

    result = await sender.send(make_job())

    assert (result.outcome, result.blame) == (SendOutcome.TRANSIENT, Blame.RATE_LIMIT)
    assert result.retry_after is not None
    assert timedelta(seconds=28) < result.retry_after <= timedelta(seconds=31)
    assert result.error == "SendGrid 429: too many requests"


async def test_a_429_storm_answers_every_request_past_the_limit_until_the_window_resets(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.limit(3, per=60)

    results = [await sender.send(make_job()) for _ in range(6)]

    assert [r.outcome for r in results] == [SendOutcome.OK] * 3 + [SendOutcome.TRANSIENT] * 3
    window_end = fake_sendgrid.requests[0].at + 60
    for limited in results[3:]:
        assert limited.blame is Blame.RATE_LIMIT
        assert limited.retry_after is not None
        expected = window_end - time.time()
        assert abs(limited.retry_after.total_seconds() - expected) < 2
    assert len(fake_sendgrid.accepted) == 3


# ---------------------------------------------------------------- ambiguity and time


async def test_no_answer_after_the_request_was_sent_is_ambiguous(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid
) -> None:
    fake_sendgrid.set_mode(Hang())
    sender = SendGridSender(
        "SG.test-key", email_from=FROM, base_url=fake_sendgrid.base_url, timeout=0.3
    )

    started = time.monotonic()
    result = await sender.send(make_job())
    await sender.close()

    assert time.monotonic() - started < 5  # Hang lasts 60 s; a busy machine needs room
    assert (result.outcome, result.blame) == (SendOutcome.AMBIGUOUS, Blame.PROVIDER)
    assert result.error is not None
    assert "timed out after the request was sent" in result.error
    assert len(fake_sendgrid.requests) == 1


async def test_a_connection_closed_after_the_request_is_ambiguous(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.set_mode(Disconnect())

    result = await sender.send(make_job())

    assert result.outcome is SendOutcome.AMBIGUOUS


async def test_a_slow_answer_within_the_timeout_is_success(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.set_mode(Slow(0.2, then=Ok()))

    result = await sender.send(make_job())

    assert result.outcome is SendOutcome.OK


def test_an_unusable_configuration_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="API key"):
        SendGridSender("", email_from=FROM)
    with pytest.raises(ValueError, match="base URL"):
        SendGridSender("SG.k", email_from=FROM, base_url="ftp://sendgrid.test")
    with pytest.raises(ValueError, match="sender address"):
        SendGridSender("SG.k", email_from="not an address")


# ---------------------------------------------------------------- odd answers and odd keys


async def test_a_429_with_an_absurd_x_ratelimit_reset_waits_a_day_at_most(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    # Epoch 999999999999 is in the year 33658, past what a datetime can hold.
    too_many = {"errors": [{"field": None, "message": "too many requests"}]}
    fake_sendgrid.set_mode(Answer.json(429, too_many, **{"X-RateLimit-Reset": "999999999999"}))

    result = await sender.send(make_job())

    assert (result.outcome, result.blame) == (SendOutcome.TRANSIENT, Blame.RATE_LIMIT)
    assert result.retry_after == timedelta(days=1)


async def test_a_retry_after_of_thousands_of_digits_waits_a_day_at_most(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    # Past Python's 4,300-digit limit for int(): it must be capped, not raised.
    fake_sendgrid.set_mode(Fail(503, retry_after="9" * 5000))

    result = await sender.send(make_job())

    assert (result.outcome, result.blame) == (SendOutcome.TRANSIENT, Blame.PROVIDER)
    assert result.retry_after == timedelta(days=1)


async def test_an_error_body_nested_past_the_parsers_depth_is_quoted_not_raised(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    fake_sendgrid.set_mode(Answer(400, b"[" * 100_000))

    result = await sender.send(make_job())

    assert (result.outcome, result.blame) == (SendOutcome.PERMANENT, Blame.MESSAGE)
    assert result.error is not None
    assert result.error.startswith("SendGrid 400: [[[")


async def test_an_error_text_holds_no_nul_nor_lone_surrogate(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid, sender: SendGridSender
) -> None:
    # Neither fits a lastError column: PostgreSQL text has no NUL, UTF-8 no lone surrogate.
    errors = {"errors": [{"field": "from\u0000", "message": "bad\u0000 \ud800sender"}]}
    fake_sendgrid.set_mode(Answer.json(400, errors))

    result = await sender.send(make_job())

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error == "SendGrid 400: bad \ufffdsender (field from)"


async def test_an_api_key_read_with_a_trailing_newline_is_sent_without_it(
    make_job: JobFactory, fake_sendgrid: FakeSendGrid
) -> None:
    # A key read from a secret file often ends with a newline; HTTP cannot carry it.
    sender = SendGridSender(
        fake_sendgrid.api_key + "\n", email_from=FROM, base_url=fake_sendgrid.base_url
    )

    result = await sender.send(make_job())
    await sender.close()

    assert result.outcome is SendOutcome.OK


def test_an_api_key_http_cannot_carry_is_refused_without_being_quoted() -> None:
    with pytest.raises(ValueError, match="COMMQ_SENDGRID_API_KEY") as refused:
        SendGridSender("SG.sec\nret", email_from=FROM)
    assert "SG.sec" not in str(refused.value)
