"""What a fake provider can be told to do (modes), and what it records (requests)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

# ---------------------------------------------------------------- modes


@dataclass(frozen=True)
class Ok:
    """Answer as the provider does when it takes the message."""


@dataclass(frozen=True)
class Fail:
    """Answer with an error, shaped as the provider shapes its errors."""

    status: int = 503
    #: The provider's error code (Twilio's ``code``); None: the fake's default for ``status``.
    code: int | None = None
    message: str | None = None
    #: SendGrid's ``field`` of the error.
    field: str | None = None
    #: A Retry-After header to send with it.
    retry_after: str | None = None


@dataclass(frozen=True)
class RateLimited:
    """Answer 429; the provider's reset (X-RateLimit-Reset, Retry-After) is ``reset_in`` away."""

    reset_in: float = 1.0


@dataclass(frozen=True)
class Hang:
    """Read the whole request, then answer nothing until the fake stops (or ``limit`` s pass)."""

    limit: float = 60.0


@dataclass(frozen=True)
class Disconnect:
    """Read the whole request, then close the connection without a word."""


@dataclass(frozen=True)
class Slow:
    """Wait ``delay`` seconds, then answer as ``then`` says."""

    delay: float
    then: Ok | Fail | RateLimited = Ok()


@dataclass(frozen=True)
class Answer:
    """One HTTP response; as a mode, sent exactly as it is."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any, **headers: str) -> Answer:
        body = json.dumps(document).encode()
        return cls(status, body, {"Content-Type": "application/json", **headers})


#: How the fake answers; an ``Answer`` as a mode is sent exactly as it is (e.g. a proxy's page).
Mode = Ok | Fail | RateLimited | Hang | Disconnect | Slow | Answer


# ---------------------------------------------------------------- requests


@dataclass
class Recorded:
    """One request the fake received, and the status it answered (None: no answer)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: time.time() when the request was complete.
    at: float
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """A form-encoded body, one value per name."""
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}
