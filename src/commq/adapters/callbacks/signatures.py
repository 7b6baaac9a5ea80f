"""The error every callback verifier raises for a request it cannot trust."""

from __future__ import annotations


class SignatureError(ValueError):
    """The request's signature is missing or does not verify."""
