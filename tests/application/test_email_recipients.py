"""E-mail recipients: plain ASCII addresses skip email-validator, and only ones it accepts."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from commq.application.validation import _PLAIN_EMAIL, _is_plain_email, validate_new_job
from commq.domain.errors import InvalidJobError
from commq.domain.jobs import Channel, NewJob

ATOM = st.text("abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=12)
LABEL = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
TOP = st.sampled_from(["com", "io", "co", "uk", "Test", "LOCAL", "onion", "arpa", "xyz", "a"])


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """Shaped like real addresses, near every limit the fast path knows."""
    local = ".".join(draw(st.lists(ATOM, min_size=1, max_size=8)))
    labels = draw(st.lists(LABEL, min_size=1, max_size=40))
    return f"{local}@{'.'.join(labels)}.{draw(TOP)}"


def _accepted_by_email_validator(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(st.one_of(addresses(), st.from_regex(_PLAIN_EMAIL, fullmatch=True)))
@example("ana@example.com")
@example("a" * 64 + "@example.com")
@example("xn--bcher-kva@xn--bcher-kva.example.com")
def test_every_address_the_fast_path_takes_email_validator_accepts(address: str) -> None:
    if _is_plain_email(address):
        assert _accepted_by_email_validator(address), address


@pytest.mark.parametrize(
    "address",
    [
        "ana@example.com",
        "First.Last+tag@mail.example.co.uk",
        "o'brien@example.ie",
        "x@a-b.example.org",
    ],
)
def test_plain_addresses_take_the_fast_path(address: str) -> None:
    assert _is_plain_email(address)
    assert _accepted_by_email_validator(address)


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("ana@example.test", False),  # special-use names
        ("ana@host.localhost", False),
        ("ana@ab--cd.example.com", False),  # an R-LDH label that is not Punycode
        ("ana@" + ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 60]) + ".com", False),
        ("ana..bob@example.com", False),
        (".ana@example.com", False),
        ("ana@example", False),
        ("ana@-example.com", False),
        ("ana @example.com", False),
        ("ana@example.com ", False),
        ("a" * 65 + "@example.com", True),  # beyond the fast path's limits, not the library's
        ("ana@example.c0m", True),
        ("zoë@example.com", True),  # beyond ASCII
        ("ana@bücher.example", True),
    ],
)
def test_what_the_fast_path_leaves_email_validator_decides(address: str, valid: bool) -> None:
    assert not _is_plain_email(address)
    assert _accepted_by_email_validator(address) is valid
    job = NewJob("acme", Channel.EMAIL, address, {"subject": "s", "text": "t"})
    if valid:
        validate_new_job(job)
        return
    with pytest.raises(InvalidJobError) as refused:
        validate_new_job(job)
    assert refused.value.field == "recipient"
