"""`commq migrate` names each migration as it starts, so a long one is not a silent wait.

Alembic logs every step it runs ("Running upgrade 0008 -> 0009, <what>") at INFO
on one logger; while a block runs, those records are turned into lines for the
operator and the revisions applied are collected for the summary.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_ALEMBIC = logging.getLogger("alembic.runtime.migration")
_STEP = re.compile(r"Running upgrade (?P<before>\S*) -> (?P<after>\S+), (?P<what>.*)", re.DOTALL)


class _Steps(logging.Handler):
    def __init__(self, show: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.applied: list[str] = []
        self._show = show

    def emit(self, record: logging.LogRecord) -> None:
        step = _STEP.match(record.getMessage())
        if step:
            self.applied.append(step["after"])
            self._show(f"applying {step['after']}: {step['what']}")


@contextmanager
def migration_steps(show: Callable[[str], None]) -> Iterator[list[str]]:
    """Call ``show`` as each migration starts; yields the revisions applied, in order."""
    handler = _Steps(show)
    level = _ALEMBIC.level
    _ALEMBIC.setLevel(logging.INFO)
    _ALEMBIC.addHandler(handler)
    try:
        yield handler.applied
    finally:
        _ALEMBIC.removeHandler(handler)
        _ALEMBIC.setLevel(level)
