"""Fixtures of the worker tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.receiver import FakeReceiver


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    """A webhook receiver on 127.0.0.1 counting deliveries per job, stopped after the test."""
    with FakeReceiver() as started:
        yield started
