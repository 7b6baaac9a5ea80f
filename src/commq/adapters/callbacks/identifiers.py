"""Provider fields made into text the database can store and index.

Callbacks are signed, yet their fields are still text commq did not write: a
NUL character (PostgreSQL text cannot hold it), a lone surrogate (JSON can
escape one, UTF-8 cannot encode it) or an id longer than a PostgreSQL index
entry (2704 bytes) would fail the event's transaction, and the request with it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from commq.adapters.storable_text import storable

#: Longer event ids are stored as their hash (real ones are a few dozen characters).
MAX_EVENT_ID_LENGTH = 255


def stored_text(value: Any) -> str:
    """``value`` as text without NUL and with any lone surrogate replaced."""
    return storable(str(value or ""))


def event_key(text: str) -> str:
    """The key an event is remembered by: ``text``, or its SHA-256 when it is too long."""
    if len(text) <= MAX_EVENT_ID_LENGTH:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
