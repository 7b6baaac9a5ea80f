"""The classification tables and their lookup, without any peer."""

from __future__ import annotations

import pytest

from commq.adapters.senders.classification import (
    AMBIGUOUS,
    MISCONFIGURED,
    NO_ANSWER,
    NOT_SENT,
    OUTAGE,
    PERMANENT,
    RATE_LIMITED,
    TRANSIENT,
    Table,
    Verdict,
    http_keys,
    lookup,
)
from commq.adapters.senders.classification.sendgrid import SENDGRID
from commq.adapters.senders.classification.smtp import SMTP, enhanced_status, smtp_keys
from commq.adapters.senders.classification.twilio import TWILIO
from commq.adapters.senders.classification.webhook import WEBHOOK
from commq.domain.outcomes import Blame, SendOutcome

TABLES = {"sendgrid": SENDGRID, "twilio": TWILIO, "smtp": SMTP, "webhook": WEBHOOK}


@pytest.mark.parametrize("table", TABLES.values(), ids=TABLES.keys())
def test_every_table_says_what_a_broken_exchange_means(table: Table) -> None:
    assert table[NOT_SENT].outcome is SendOutcome.TRANSIENT
    assert table[NO_ANSWER].outcome is SendOutcome.AMBIGUOUS


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (202, None),
        (400, PERMANENT),
        (401, MISCONFIGURED),
        (403, MISCONFIGURED),
        (413, PERMANENT),
        (422, PERMANENT),
        (429, RATE_LIMITED),
        (500, OUTAGE),
        (503, OUTAGE),
    ],
)
def test_sendgrid_statuses(status: int, verdict: Verdict | None) -> None:
    found = lookup(SENDGRID, http_keys(status), PERMANENT)
    if verdict is None:
        assert found.outcome is SendOutcome.OK
    else:
        assert found == verdict


@pytest.mark.parametrize(
    ("keys", "verdict"),
    [
        (["code:20429", "429", "4xx"], RATE_LIMITED),
        (["code:21610", "400", "4xx"], PERMANENT),
        (["code:20003", "401", "4xx"], MISCONFIGURED),
        (["code:99999", "400", "4xx"], PERMANENT),
        (["code:20500", "500", "5xx"], AMBIGUOUS),
        (["503", "5xx"], AMBIGUOUS),
    ],
)
def test_twilio_codes_win_over_statuses(keys: list[str], verdict: Verdict) -> None:
    assert lookup(TWILIO, keys, PERMANENT) == verdict


def test_webhook_receivers_are_never_blamed_as_providers() -> None:
    assert {verdict.blame for verdict in WEBHOOK.values()} == {Blame.MESSAGE}


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (550, "5.1.1 <x@y>: Recipient address rejected", "5.1.1"),
        (451, " 4.3.0 Try later", "4.3.0"),
        (535, "5.7.8 Authentication credentials invalid", "5.7.8"),
        (538, "5.7.11 Encryption required", "5.7.11"),
        (250, "2.0.0 Ok", "2.0.0"),
        (550, "4.2.2 contradicts the reply code", None),
        (550, "Mailbox unavailable", None),
        (550, "5.1.1.1 too many parts", None),
        (550, "5.1", None),
    ],
)
def test_enhanced_status_codes_are_read_from_the_start_of_the_text(
    code: int, text: str, expected: str | None
) -> None:
    assert enhanced_status(code, text) == expected


def test_smtp_keys_go_from_most_to_least_specific() -> None:
    assert smtp_keys(452, "4.2.2", in_session=False) == ["4.2.2", "4.2", "452", "4xx"]
    assert smtp_keys(554, None, in_session=True) == ["session:5xx", "554", "5xx"]


@pytest.mark.parametrize(
    ("code", "enhanced", "verdict"),
    [
        (421, "4.7.0", OUTAGE),
        (452, "4.2.2", TRANSIENT),
        (452, "4.3.1", OUTAGE),
        (452, None, RATE_LIMITED),
        (454, "4.7.0", RATE_LIMITED),
        (535, "5.7.8", MISCONFIGURED),
        (550, "5.7.1", PERMANENT),
        (599, None, PERMANENT),
    ],
)
def test_smtp_replies(code: int, enhanced: str | None, verdict: Verdict) -> None:
    assert lookup(SMTP, smtp_keys(code, enhanced, in_session=False), OUTAGE) == verdict


def test_a_key_no_table_has_falls_back_to_the_default() -> None:
    assert lookup({}, ["anything"], OUTAGE) is OUTAGE
