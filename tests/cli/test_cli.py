"""The commq command line, run as a user would."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from commq.entrypoints.api.app import create_app
from commq.entrypoints.settings import load_settings
from serving import commq


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COMMQ_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "COMMQ_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def test_migrate_then_keys_create_prints_a_working_key_last(env: dict[str, str]) -> None:
    assert commq("migrate", env=env).returncode == 0
    created = commq(
        "keys", "create", "--role", "support", "--name", "helpdesk", "--business", "acme", env=env
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("cq_")
    settings = load_settings(environ=env)

    async def call() -> httpx.Response:
        app = create_app(settings, run_worker=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get(
                    "/communication-queue/stats", headers={"Authorization": f"Bearer {key}"}
                )

    import asyncio

    assert asyncio.run(call()).status_code == 200


def test_enqueue_prints_the_job_and_stats_shows_it(env: dict[str, str]) -> None:
    done = commq(
        "enqueue",
        "--channel",
        "email",
        "--to",
        "ana@example.com",
        "--business",
        "acme",
        "--subject",
        "Hi",
        "--text",
        "Hello",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "pending" and job["businessId"] == "acme"
    table = commq("stats", env=env)
    assert table.returncode == 0
    assert "pending" in table.stdout and "1" in table.stdout.split("pending")[1].splitlines()[0]


def test_bad_input_gets_a_clear_message_and_no_traceback(env: dict[str, str]) -> None:
    bad_email = commq(
        "enqueue",
        "--channel",
        "email",
        "--to",
        "nope",
        "--business",
        "acme",
        "--subject",
        "s",
        "--text",
        "t",
        env=env,
    )
    assert bad_email.returncode == 1
    assert "recipient" in bad_email.stderr or "e-mail" in bad_email.stderr
    assert "Traceback" not in bad_email.stderr
    bad_json = commq(
        "enqueue",
        "--channel",
        "sms",
        "--to",
        "+14155550100",
        "--business",
        "a",
        "--payload",
        "{",
        env=env,
    )
    assert bad_json.returncode == 1 and "not JSON" in bad_json.stderr
    bad_setting = commq("stats", env={**env, "COMMQ_MAX_ATTEMPTS": "many"})
    assert bad_setting.returncode == 2 and "COMMQ_MAX_ATTEMPTS" in bad_setting.stderr
    assert "Traceback" not in bad_setting.stderr


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--priority", "99999999999999999999", "priority"),  # past a 64-bit integer
        ("--priority", "5000", "priority"),  # the API refuses it too
        ("--business", "", "businessId"),
        ("--communication-id", "", "communicationId"),
    ],
)
def test_enqueue_refuses_what_the_api_refuses_naming_the_field(
    env: dict[str, str], option: str, value: str, field: str
) -> None:
    args = {"--business": "acme", option: value}
    done = commq(
        "enqueue", "--channel", "sms", "--to", "+14155550100", "--text", "hi",
        *[part for pair in args.items() for part in pair], env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith(f"error: {field}: "), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("option", "value"), [("--business", ""), ("--name", " ")])
def test_keys_create_refuses_an_empty_business_or_name(
    env: dict[str, str], option: str, value: str
) -> None:
    # An empty --business (an unset "$BUSINESS") must not quietly make a platform key.
    args = {"--role": "admin", "--name": "ops", option: value}
    done = commq("keys", "create", *[p for pair in args.items() for p in pair], env=env)
    assert done.returncode == 1, done.stdout
    assert option.removeprefix("--") in done.stderr and "cq_" not in done.stdout
    assert "Traceback" not in done.stderr
