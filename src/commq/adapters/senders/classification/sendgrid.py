"""SendGrid v3 Mail Send answers (``POST /v3/mail/send``).

Sources, as collected in research/providers.md §3.1:
[responses] twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/responses
[errors] twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors
[mail-errors] twilio.com/docs/sendgrid/api-reference/mail-send/errors
[rate] twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits
[mirror] rapidapi.com/sendgrid (older docs mirror: 413, 503)
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

#: The key of a 403 about the from address a job chose itself (see ``SENDGRID``).
OWN_FROM_REFUSED = "403:own-from"

SENDGRID: Table = {
    # [responses] 202 Accepted: queued for delivery (delivery is known only from events).
    "2xx": OK,
    # [errors][mail-errors] 400: the request failed validation (also the 1,000
    # personalizations / recipients limits): fix the payload, never resend it unchanged.
    "400": PERMANENT,
    # [errors] 401: authentication failed; every message would fail alike.
    "401": MISCONFIGURED,
    # [errors] 403 whose every error names the ``from`` field ("The from address does
    # not match a verified Sender Identity"), for a job that set its own from: only
    # jobs with that address fail, the account sends the others, so it is permanent
    # for this message and says nothing about the provider (other tenants keep flowing).
    OWN_FROM_REFUSED: PERMANENT,
    # [errors] any other 403: the configured COMMQ_EMAIL_FROM is not a verified
    # identity, the key lacks mail.send ("access forbidden"), or the account is
    # temporarily blocked: every message would fail alike, back off the whole provider.
    "403": MISCONFIGURED,
    # Inference: 404/405 on the one Mail Send path means COMMQ_SENDGRID_BASE_URL is wrong.
    "404": MISCONFIGURED,
    "405": MISCONFIGURED,
    # [errors] 406: missing Accept header; commq always sends one, so this is our fault.
    "406": MISCONFIGURED,
    # [mirror] 413: payload too large: this message can never pass.
    "413": PERMANENT,
    # [rate] 429: rate limited until X-RateLimit-Reset (epoch seconds).
    "429": RATE_LIMITED,
    # [errors] 451: data-residency restriction of the account (EU subuser on the global host).
    "451": MISCONFIGURED,
    # Inference: any other 4xx is about this request.
    "4xx": PERMANENT,
    # [errors][mirror] 500 and 503 (and other 5xx): the provider failed; retry with backoff.
    # research/reliability.md §1 treats SendGrid as non-idempotent, but the issue
    # (item 1) ranks 5xx as transient: SendGrid answers 5xx before queueing.
    "5xx": OUTAGE,
    # research/providers.md §3.1 table: connection errors and timeouts are transient.
    NOT_SENT: OUTAGE,
    # research/reliability.md G4: a timeout after the request left is ambiguous.
    NO_ANSWER: AMBIGUOUS,
}
