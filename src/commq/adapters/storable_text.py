"""Text commq did not write, made fit for a text column.

Provider answers (a job's lastError) and callback fields (event and message ids)
come from outside: PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a
lone surrogate (JSON can escape one, and aiosmtplib turns reply bytes that are
not UTF-8 into them). A row that cannot be written fails its whole transaction:
a sent job's result is then never recorded (its lease runs out and the message
goes again), and a callback's request fails.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` without NUL and with any lone surrogate replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))
