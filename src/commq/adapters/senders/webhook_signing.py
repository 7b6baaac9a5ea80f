"""Standard Webhooks signatures (github.com/standard-webhooks/standard-webhooks, spec).

Each signed request carries ``webhook-id`` (the job id, the same on every
retry), ``webhook-timestamp`` (unix seconds of this attempt) and
``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
one per secret separated by spaces, so a receiver rotating its secret accepts
either. Secrets are written ``whsec_`` + base64 of 24 to 64 random bytes, as
the spec recommends; ``new_secret()`` makes one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence

SECRET_PREFIX = "whsec_"
_MIN_SECRET_BYTES = 24
_MAX_SECRET_BYTES = 64

#: What a business signs with: none (unsigned), one secret, or several during a rotation.
SecretValue = bytes | Sequence[bytes] | None
#: Business id → secret(s), as a mapping or a lookup function.
WebhookSecrets = Mapping[str, bytes | Sequence[bytes]] | Callable[[str], SecretValue]


def new_secret() -> str:
    """A fresh secret in the spec's ``whsec_<base64>`` form (32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_secret(text: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret; ValueError when it is not one."""
    encoded = text.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret must be whsec_ followed by base64") from None
    if not _MIN_SECRET_BYTES <= len(key) <= _MAX_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret must hold {_MIN_SECRET_BYTES} to {_MAX_SECRET_BYTES} bytes, "
            f"not {len(key)}"
        )
    return key


def parse_secrets(text: str) -> dict[str, tuple[bytes, ...]]:
    """``biz-1=whsec_A|whsec_B,biz-2=whsec_C`` → each business's secrets (``|``: rotation)."""
    found: dict[str, tuple[bytes, ...]] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        business, sep, values = entry.partition("=")
        if not sep or not business.strip():
            raise ValueError(f"expected business=whsec_..., got {entry.split('=')[0]!r}=...")
        found[business.strip()] = tuple(parse_secret(value) for value in values.split("|"))
    return found


def signature(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature over ``{id}.{timestamp}.{body}``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class WebhookSigner:
    """Signs each business's webhooks with its own secrets; businesses without one go unsigned."""

    def __init__(self, secrets: WebhookSecrets) -> None:
        self._secrets = secrets

    def headers(
        self, business_id: str, message_id: str, timestamp: int, body: bytes
    ) -> dict[str, str]:
        """``webhook-timestamp`` and ``webhook-signature``, or {} for a business with no secret."""
        keys = self._keys(business_id)
        if not keys:
            return {}
        signed = " ".join(signature(key, message_id, timestamp, body) for key in keys)
        return {"webhook-timestamp": str(timestamp), "webhook-signature": signed}

    def _keys(self, business_id: str) -> tuple[bytes, ...]:
        if callable(self._secrets):
            found: SecretValue = self._secrets(business_id)
        else:
            found = self._secrets.get(business_id)
        if found is None:
            return ()
        if isinstance(found, bytes):
            return (found,) if found else ()
        return tuple(key for key in found if key)
