"""fast_json writes what the stdlib would, and takes whatever the stdlib takes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commq.adapters import fast_json

# Text as it can be encoded: lone surrogates have their own test.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]))
_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text()
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def _documents(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@given(_documents(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | _TEXT))
def test_without_floats_the_bytes_are_the_stdlibs(value: Any) -> None:
    assert fast_json.dumps(value) == _stdlib(value)
    assert json.loads(fast_json.dumps_text(value)) == value


@given(_documents(_SCALARS | _FLOATS))
def test_every_document_reads_back_as_itself(value: Any) -> None:
    assert json.loads(fast_json.dumps(value)) == value
    assert json.loads(fast_json.dumps_text(value)) == value


def test_what_orjson_refuses_goes_through_the_stdlib_escaped() -> None:
    big = {"n": 2**70, "m": -(2**70)}
    assert fast_json.dumps(big) == b'{"n":1180591620717411303424,"m":-1180591620717411303424}'
    lone_surrogate = {"s": "\u00e9\ud800"}  # what json.loads makes of "\u00e9\ud800"
    assert fast_json.dumps(lone_surrogate) == b'{"s":"\\u00e9\\ud800"}'
    assert fast_json.dumps_text(lone_surrogate) == '{"s":"\\u00e9\\ud800"}'


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 28, 7, 36, 8, 67086, tzinfo=UTC),
        datetime(2026, 11, 28, 7, 36, 8, tzinfo=UTC),  # no microseconds: none written
        datetime(2026, 11, 28, 9, 0, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_aware_datetimes_are_written_as_their_isoformat_on_both_paths(at: datetime) -> None:
    assert fast_json.dumps_text([at]) == f'["{at.isoformat()}"]'
    # An int orjson refuses sends the whole document through the stdlib.
    assert fast_json.dumps_text([at, 2**70]) == f'["{at.isoformat()}",{2**70}]'


@given(_documents(_SCALARS | _FLOATS | st.integers(-(2**80), 2**80)))
def test_what_dumps_and_read_reads_is_what_the_stdlib_reads_of_its_text(value: Any) -> None:
    text, read = fast_json.dumps_and_read(value)
    assert text == fast_json.dumps_text(value)
    assert read == json.loads(text)
    assert repr(read) == repr(json.loads(text))  # ints stay ints, -0.0 stays -0.0
