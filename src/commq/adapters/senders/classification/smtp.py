"""SMTP replies, by RFC 3463 enhanced status code first and RFC 5321 reply code next.

Key order (see ``smtp_keys``): ``"session:5xx"`` when the reply came before any
message command (greeting, EHLO, STARTTLS, AUTH), then ``"5.7.8"`` (the
enhanced code), ``"5.7"`` (its class and subject), ``"535"`` (the reply
code) and ``"5xx"`` (its class).

Sources, as collected in research/providers.md §3.3:
[5321] RFC 5321 §4.2.1 (4yz: "the SMTP client SHOULD try again"; 5yz: do not
repeat the request) and §4.2.2/§4.2.3 (421: the service closes the channel);
[3463] RFC 3463 and the IANA "SMTP Enhanced Status Codes" registry (X.2.X
mailbox, X.3.X mail system, X.4.X network and routing, X.7.X security);
[4954] RFC 4954 §6 (530, 534, 535, 538 and 5.7.8: authentication);
[3207] RFC 3207 §4 and [4954] RFC 4954 §3: STARTTLS and AUTH are EHLO extensions,
usable only when the server lists them;
[ses] docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html and the
emailit.com KB (454 / 452 4.x.x throttling: back off the whole sender).
"""

from __future__ import annotations

import re

from commq.adapters.senders.classification import (
    AMBIGUOUS,
    MISCONFIGURED,
    NO_ANSWER,
    NOT_SENT,
    OUTAGE,
    PERMANENT,
    RATE_LIMITED,
    TRANSIENT,
    Table,
)

#: The server's EHLO does not list STARTTLS or AUTH, which the configuration asks for.
MISSING_EXTENSION = "session:missing-extension"

SMTP: Table = {
    # [3207][4954] COMMQ_SMTP_URL asks for STARTTLS or AUTH and the server offers
    # neither: no message can pass until the setting (or the server) is fixed.
    MISSING_EXTENSION: MISCONFIGURED,
    # [5321] Before MAIL FROM no reply is about a message: a refusal of the session
    # (greeting 554, STARTTLS or AUTH refused) stops every message alike.
    "session:4xx": OUTAGE,
    "session:5xx": MISCONFIGURED,
    # [3463] X.2.X mailbox status (4.2.2 mailbox full, 4.2.1 disabled): this recipient, for now.
    "4.2": TRANSIENT,
    # [3463] X.3.X mail system and X.4.X network/routing status: the server's own trouble.
    "4.3": OUTAGE,
    "4.4": OUTAGE,
    # [4954] 5.7.8 credentials invalid, 5.7.9 mechanism too weak, 5.7.11 encryption
    # needed for it: our configuration. Other 5.7.X (5.7.1 "message refused", "sender
    # rejected", SPF/DMARC) can be this message's own From or content: permanent for it.
    "5.7.8": MISCONFIGURED,
    "5.7.9": MISCONFIGURED,
    "5.7.11": MISCONFIGURED,
    # [5321] 421: service not available, closing the channel.
    "421": OUTAGE,
    # [ses] 454 "Throttling failure: Maximum sending rate exceeded" (also RFC 4954's
    # temporary AUTH failure, which waits just the same).
    "454": RATE_LIMITED,
    # [ses] 452 4.x.x without a mailbox (4.2) or system (4.3) detail: throttling,
    # e.g. 452 4.5.3 too many recipients.
    "452": RATE_LIMITED,
    # [4954] 530 authentication required (or "must issue STARTTLS first"), 534, 535, 538.
    "530": MISCONFIGURED,
    "534": MISCONFIGURED,
    "535": MISCONFIGURED,
    "538": MISCONFIGURED,
    # [5321] any other 4yz: try again later (greylisting 450/451 4.7.1 among them).
    "4xx": TRANSIENT,
    # [5321][3463] any other 5yz: 5.1.1 bad mailbox, 5.7.1 refused, 5.3.4 too big.
    "5xx": PERMANENT,
    # The connection broke or timed out before the content was sent: nothing was queued.
    NOT_SENT: OUTAGE,
    # research/reliability.md §7.1: a timeout after DATA may still deliver the message.
    NO_ANSWER: AMBIGUOUS,
}

# RFC 3463 §2: class "." subject "." detail, at the start of the reply text (RFC 2034 §4).
_ENHANCED = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?=\s|$)")


def enhanced_status(code: int, text: str) -> str | None:
    """The RFC 3463 enhanced status code at the start of a reply's text, if any.

    A code whose class contradicts the reply code (``550 4.2.2``) is not
    trusted (RFC 2034 §4 says they must agree), so the reply code alone decides.
    """
    found = _ENHANCED.match(text.lstrip())
    if found is None or found.group(1) != str(code)[:1]:
        return None
    return found.group(0)


def smtp_keys(code: int, enhanced: str | None, in_session: bool) -> list[str]:
    """The table keys of one reply, most specific first (see the module docstring)."""
    keys = [f"session:{code // 100}xx"] if in_session else []
    if enhanced:
        keys += [enhanced, enhanced.rsplit(".", 1)[0]]
    return [*keys, str(code), f"{code // 100}xx"]
