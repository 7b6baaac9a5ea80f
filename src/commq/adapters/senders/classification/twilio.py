"""Twilio Programmable Messaging answers (``POST /2010-04-01/Accounts/{Sid}/Messages.json``).

Error bodies carry ``code``; ``"code:NNNNN"`` keys are looked up before the
HTTP status. Sources, as collected in research/providers.md §3.2:
[E] twilio.com/docs/api/errors/<code>; [wiki] TundraSoft/tundra-connect wiki
"Twilio Errors"; [20500] twilio.com/docs/errors/20500, quoted in
research/reliability.md §1 ("if you get a 500 ... and you retry the request,
it is possible for a customer to receive multiple messages").
"""

from __future__ import annotations

from commq.adapters.senders.classification import (
    AMBIGUOUS,
    MISCONFIGURED,
    NO_ANSWER,
    NOT_SENT,
    OK,
    OUTAGE,
    PERMANENT,
    RATE_LIMITED,
    Table,
)

TWILIO: Table = {
    # [E]/20429: too many concurrent requests; "never processed and ... always safe to retry".
    "code:20429": RATE_LIMITED,
    # [E]/21611: the From number already has 10 hours of queued messages: slow down.
    "code:21611": RATE_LIMITED,
    # [wiki] 20003: authentication failed: the account SID or token is wrong.
    "code:20003": MISCONFIGURED,
    # [wiki] 21606: the From number cannot send SMS: every message would fail alike.
    "code:21606": MISCONFIGURED,
    # [E]/21211: the To number is not valid.
    "code:21211": PERMANENT,
    # [wiki] 21610: the recipient replied STOP; permanent until they opt back in.
    "code:21610": PERMANENT,
    # [wiki] 21612: no route to the To number.
    "code:21612": PERMANENT,
    # [wiki] 21614: the To number cannot receive SMS.
    "code:21614": PERMANENT,
    # [E]/21635: the To number is a landline.
    "code:21635": PERMANENT,
    # [E]/21608: a trial account may only text verified numbers. research calls it
    # configuration, but it is decided per recipient: making it a provider fault
    # would stall every message, so the message fails, naming the code.
    "code:21608": PERMANENT,
    # [20500] 20500: internal error: the message may have been created.
    "code:20500": AMBIGUOUS,
    # [201] Created: the message resource exists and is queued.
    "2xx": OK,
    # [wiki] 401 (20003): bad credentials.
    "401": MISCONFIGURED,
    # Inference: 403 (permission) and 404 (unknown account SID in the path) are account faults.
    "403": MISCONFIGURED,
    "404": MISCONFIGURED,
    # [E]/20429: HTTP 429 is the same concurrency limit.
    "429": RATE_LIMITED,
    # Inference: any other 4xx names a problem with this message.
    "4xx": PERMANENT,
    # [20500]: any 5xx may follow a created message; retrying could text twice.
    "5xx": AMBIGUOUS,
    # Nothing reached Twilio (refused, connect timeout): safe to retry.
    NOT_SENT: OUTAGE,
    # [20500] and research/reliability.md G4: no answer to a sent request is ambiguous.
    NO_ANSWER: AMBIGUOUS,
}
