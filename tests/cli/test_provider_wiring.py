"""COMMQ_PROVIDERS names real providers; missing credentials are a clear start-up error."""

from __future__ import annotations

from dataclasses import replace

import pytest

from commq.adapters.senders import SendGridSender, SmtpSender, TwilioSender
from commq.domain.jobs import Channel
from commq.entrypoints.bootstrap import build_senders
from commq.entrypoints.settings import (
    ProviderSettings,
    Settings,
    SettingsError,
    load_settings,
    parse_providers,
)


def test_sendgrid_and_twilio_are_built_from_their_settings(tmp_path: object) -> None:
    settings = load_settings(
        environ={
            "COMMQ_PROVIDERS": "email=sendgrid|smtp,sms=twilio",
            "COMMQ_SENDGRID_API_KEY": "SG.test",
            "COMMQ_SENDGRID_BASE_URL": "http://127.0.0.1:9",
            "COMMQ_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "COMMQ_TWILIO_AUTH_TOKEN": "token",
            "COMMQ_TWILIO_FROM": "+14155550100",
        }
    )
    senders = build_senders(settings)
    assert [type(s) for s in senders[Channel.EMAIL]] == [SendGridSender, SmtpSender]
    assert [type(s) for s in senders[Channel.SMS]] == [TwilioSender]
    assert settings.provider_settings.sendgrid_base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("providers", "named"),
    [("email=sendgrid", "COMMQ_SENDGRID_API_KEY"), ("sms=twilio", "COMMQ_TWILIO_ACCOUNT_SID")],
)
def test_a_provider_without_credentials_is_refused_naming_the_variable(
    providers: str, named: str
) -> None:
    settings = replace(
        Settings(), providers=parse_providers(providers), provider_settings=ProviderSettings()
    )
    with pytest.raises(SettingsError, match=named):
        build_senders(settings)
