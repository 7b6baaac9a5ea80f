"""Error classification as data: one table per provider, one lookup for all of them.

A table maps keys to a ``Verdict`` (outcome and blame). A sender turns what it
saw into keys, most specific first, and takes the verdict of the first key
its table has. The key shapes are:

- HTTP: ``"429"`` (the status), then ``"4xx"`` (its class);
- Twilio: ``"code:21211"`` (the error code of the body) before the HTTP keys;
- SMTP: ``"5.1.1"``, ``"5.1"`` (the RFC 3463 enhanced code and its subject),
  then ``"550"`` (the reply code), then ``"5xx"``;
- ``NOT_SENT`` / ``NO_ANSWER``: the exchange broke before the request (or the
  message content) left us, or after it, without an answer.

Adding a provider means adding a table (each row citing its source) and a
small adapter that builds the keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from commq.domain.outcomes import Blame, SendOutcome

#: The connection failed, or timed out, before the request was complete: the
#: provider cannot have acted on it, so retrying is safe.
NOT_SENT = "not-sent"
#: The request was sent, then the connection broke or timed out without an answer.
NO_ANSWER = "no-answer"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one answer means: how the send ended, and whose problem it was."""

    outcome: SendOutcome
    blame: Blame


#: Taken, or at least queued, by the provider.
OK = Verdict(SendOutcome.OK, Blame.MESSAGE)
#: Worth retrying; the message itself was the problem (mailbox full, greylisting).
TRANSIENT = Verdict(SendOutcome.TRANSIENT, Blame.MESSAGE)
#: The provider is down: wait without using up an attempt, let the circuit breaker count it.
OUTAGE = Verdict(SendOutcome.TRANSIENT, Blame.PROVIDER)
#: The provider asked us to slow down: wait for its reset, no failover.
RATE_LIMITED = Verdict(SendOutcome.TRANSIENT, Blame.RATE_LIMIT)
#: Retrying this message cannot help (bad recipient, rejected content).
PERMANENT = Verdict(SendOutcome.PERMANENT, Blame.MESSAGE)
#: Our credentials or account are wrong: no message can pass until an operator
#: fixes it, so jobs wait (the domain keeps them pending) and the breaker opens.
MISCONFIGURED = Verdict(SendOutcome.PERMANENT, Blame.PROVIDER)
#: The provider may have taken the message; retrying could deliver it twice.
AMBIGUOUS = Verdict(SendOutcome.AMBIGUOUS, Blame.PROVIDER)

Table = Mapping[str, Verdict]


def lookup(table: Table, keys: Iterable[str], default: Verdict) -> Verdict:
    """The verdict of the first of ``keys`` that ``table`` has (most specific first)."""
    return next((table[key] for key in keys if key in table), default)


def http_keys(status: int) -> tuple[str, str]:
    """The keys of an HTTP status: the exact status, then its class (``"503"``, ``"5xx"``)."""
    return str(status), f"{status // 100}xx"


__all__ = [
    "AMBIGUOUS",
    "MISCONFIGURED",
    "NOT_SENT",
    "NO_ANSWER",
    "OK",
    "OUTAGE",
    "PERMANENT",
    "RATE_LIMITED",
    "TRANSIENT",
    "Table",
    "Verdict",
    "http_keys",
    "lookup",
]
