"""COMMQ_RATE_LIMITS, COMMQ_CIRCUIT_* and the callback keys, read and refused."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from commq.domain.ratelimit import RateLimit
from commq.entrypoints.reliability import CallbackVerifiers
from commq.entrypoints.settings import ReliabilitySettings, Settings, SettingsError, load_settings


def test_reliability_settings_are_read_from_the_environment() -> None:
    settings = load_settings(
        {
            "COMMQ_RATE_LIMITS": "sendgrid=100/s,twilio=10/m",
            "COMMQ_CIRCUIT_COOLDOWN": "0.5",
            "COMMQ_CIRCUIT_THRESHOLD": "3",
            "COMMQ_TWILIO_AUTH_TOKEN": "tok",
        }
    ).reliability
    assert settings.rate_limits == {
        "sendgrid": RateLimit(100, timedelta(seconds=1)),
        "twilio": RateLimit(10, timedelta(minutes=1)),
    }
    assert (settings.circuit_cooldown, settings.circuit_threshold) == (0.5, 3)
    assert settings.twilio_auth_token == "tok" and settings.sendgrid_webhook_public_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COMMQ_RATE_LIMITS", "sendgrid=fast"),
        ("COMMQ_CIRCUIT_COOLDOWN", "soon"),
        ("COMMQ_CIRCUIT_THRESHOLD", "0"),
    ],
)
def test_unreadable_reliability_settings_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


def _with_key(key: str) -> Settings:
    return replace(Settings(), reliability=ReliabilitySettings(sendgrid_webhook_public_key=key))


def test_a_sendgrid_key_that_is_not_an_ecdsa_public_key_is_refused_at_start() -> None:
    rsa_der = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for key in ("not a key", base64.b64encode(rsa_der).decode()):
        with pytest.raises(SettingsError, match="COMMQ_SENDGRID_WEBHOOK_PUBLIC_KEY"):
            CallbackVerifiers.from_settings(_with_key(key))


def test_a_sendgrid_key_is_accepted_as_base64_der_or_pem() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for key in (base64.b64encode(der).decode(), pem.decode()):
        assert CallbackVerifiers.from_settings(_with_key(key)).sendgrid is not None
