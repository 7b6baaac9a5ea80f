"""Answers of a webhook receiver: the business's own HTTP endpoint.

Every row blames the message: a receiver is the recipient, not a provider, so
one business's broken endpoint uses up that job's attempts and never opens a
circuit that would stall every other business's webhooks.

Sources: RFC 9110 §15 (status classes; 408 Request Timeout and 429 "may be
retried", Retry-After §10.2.3), RFC 8470 §5.2 (425 Too Early: retry later),
research/reliability.md S11/S19 (redirects are not followed).
"""

from __future__ import annotations

from commq.adapters.senders.classification import (
    NO_ANSWER,
    NOT_SENT,
    OK,
    PERMANENT,
    TRANSIENT,
    Table,
    Verdict,
)
from commq.domain.outcomes import Blame, SendOutcome

WEBHOOK: Table = {
    # RFC 9110 §15.3: 2xx, the receiver took it.
    "2xx": OK,
    # research/reliability.md S11/S19: a redirect is never followed (SSRF), so it cannot pass.
    "3xx": PERMANENT,
    # RFC 9110 §15.5.9: 408, the receiver timed out reading; sending again may succeed.
    "408": TRANSIENT,
    # RFC 8470 §5.2: 425 Too Early, retry later.
    "425": TRANSIENT,
    # RFC 6585 §4: 429 Too Many Requests, honouring Retry-After.
    "429": TRANSIENT,
    # RFC 9110 §15.5: any other 4xx is the request's fault.
    "4xx": PERMANENT,
    # RFC 9110 §15.6: 5xx, the receiver failed; retry with backoff.
    "5xx": TRANSIENT,
    # The receiver was unreachable: retry.
    NOT_SENT: TRANSIENT,
    # Webhooks carry a stable webhook-id, so the domain retries an ambiguous one.
    NO_ANSWER: Verdict(SendOutcome.AMBIGUOUS, Blame.MESSAGE),
}
