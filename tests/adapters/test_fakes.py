"""The provider fakes themselves: what the outage drill relies on."""

from __future__ import annotations

import time

import httpx
import pytest

from fakes import Fail, FakeSendGrid, FakeTwilio, Hang, Ok, Recorded


def test_peak_rate_counts_the_busiest_window() -> None:
    now = time.time()
    with FakeSendGrid() as fake:
        for offset in (0.0, 0.1, 0.2, 1.5, 1.6, 1.7, 1.8, 3.0):
            fake.record(Recorded("GET", "/", {}, b"", now + offset))

    assert fake.peak_rate(1.0) == 4
    assert fake.peak_rate(0.15) == 2
    assert fake.peak_rate(10.0) == 8


def test_scripted_modes_come_before_the_default_and_recipients_before_both() -> None:
    with FakeTwilio() as twilio:
        twilio.set_mode(Fail(503))
        twilio.script(Ok())
        twilio.for_recipient("+15550000001", Fail(400, 21610))
        auth = (twilio.account_sid, twilio.auth_token)
        url = twilio.base_url + twilio.path
        with httpx.Client(auth=auth) as client:
            answers = [
                client.post(url, data={"To": to, "From": "+15005550006", "Body": "hi"})
                for to in ("+15550000001", "+15550000002", "+15550000003")
            ]

    assert [a.status_code for a in answers] == [400, 201, 503]
    assert answers[0].json()["code"] == 21610
    assert answers[2].json()["code"] == 20503
    assert [r.status for r in twilio.requests] == [400, 201, 503]


def test_stopping_ends_a_hang_at_once() -> None:
    fake = FakeSendGrid().start()
    fake.set_mode(Hang(limit=30))
    body = {
        "personalizations": [{"to": [{"email": "a@b.test"}]}],
        "from": {"email": "c@d.test"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "v"}],
    }
    with httpx.Client(timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.post(
            fake.base_url + "/v3/mail/send",
            json=body,
            headers={"Authorization": f"Bearer {fake.api_key}"},
        )

    started = time.monotonic()
    fake.stop()

    assert time.monotonic() - started < 5  # Hang lasts 60 s; a busy machine needs room
    [request] = fake.requests
    assert request.status is None
    assert fake.errors == []
