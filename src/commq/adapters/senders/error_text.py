"""Provider text made fit for a job's lastError.

What a provider answers is text commq did not write, and lastError is a text
column: PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a lone
surrogate (JSON can escape one, and aiosmtplib turns reply bytes that are not
UTF-8 into them). A result the store cannot write is never recorded: the
job's lease runs out and the message is sent again.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` without NUL and with any lone surrogate replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))
