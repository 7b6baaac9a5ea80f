"""`commq keys list` and `commq keys revoke`, run as an operator would, on each backend."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from commq.application.keys import hash_secret
from commq.domain.operations import AuditFilter
from commq.domain.permissions import Role
from commq.entrypoints.api.app import create_app
from commq.entrypoints.bootstrap import build
from commq.entrypoints.cli.console import CLI_ACTOR
from commq.entrypoints.settings import load_settings
from serving import commq


def create(env: dict[str, str], role: str, name: str, business: str | None = None) -> str:
    """Make a key in this process (`keys create` has tests of its own); the key itself."""

    async def make() -> str:
        container = await build(load_settings(environ=env))
        try:
            _, plain = await container.keys.create(name, Role(role), business, CLI_ACTOR)
        finally:
            await container.close()
        return plain

    return asyncio.run(make())


def listed(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    done = commq("keys", "list", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    keys: list[dict[str, object]] = json.loads(done.stdout)
    return keys


def status_with(env: dict[str, str], key: str) -> int:
    """The status a freshly started API process answers a request with ``key``."""

    async def call() -> int:
        app = create_app(load_settings(environ=env), run_worker=False, apply_migrations=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get(
                    "/communication-queue/stats", headers={"Authorization": f"Bearer {key}"}
                )
                return response.status_code

    return asyncio.run(call())


def audit_events(env: dict[str, str], action: str) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        container = await build(load_settings(environ=env))
        try:
            page = await container.operations.audit_trail(
                CLI_ACTOR, AuditFilter(action=action), 100, None
            )
        finally:
            await container.close()
        return [
            {
                "actorKeyId": e.actor_key_id,
                "actorName": e.actor_name,
                "role": e.role,
                "businessId": e.business_id,
                "filter": e.filter,
            }
            for e in page.items
        ]

    return asyncio.run(read())


def test_list_shows_each_key_s_id_prefix_role_business_and_time_never_its_secret(
    env: dict[str, str],
) -> None:
    root = create(env, "admin", "root")
    shop = create(env, "producer", "shop backend", "acme")
    # Oldest first (the store's tests); these two may share a millisecond, so by name here.
    keys = sorted(listed(env), key=lambda k: str(k["name"]))
    assert [(k["name"], k["role"], k["businessId"]) for k in keys] == [
        ("root", "admin", None),
        ("shop backend", "producer", "acme"),
    ]
    assert all(set(k) == {"id", "prefix", "name", "role", "businessId", "createdAt"} for k in keys)
    assert [k["prefix"] for k in keys] == [root.split("_")[1], shop.split("_")[1]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", str(k["createdAt"])) for k in keys)

    table = commq("keys", "list", env=env)
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["ID", "PREFIX", "ROLE", "BUSINESS", "CREATED", "NAME"]
    rows = {line.split()[0]: line for line in lines}
    assert rows[str(keys[0]["id"])].split()[1:4] == [keys[0]["prefix"], "admin", "(platform)"]
    assert rows[str(keys[1]["id"])].split()[1:4] == [keys[1]["prefix"], "producer", "acme"]
    assert rows[str(keys[1]["id"])].endswith("Z  shop backend")
    shown = table.stdout + commq("keys", "list", "--json", env=env).stdout
    for plain in (root, shop):
        assert plain.split("_", 2)[2] not in shown and hash_secret(plain) not in shown


def test_list_narrows_to_one_business_and_says_when_there_is_none(env: dict[str, str]) -> None:
    create(env, "admin", "root")
    create(env, "support", "helpdesk", "acme")
    create(env, "producer", "globex shop", "globex")
    assert [k["name"] for k in listed(env, "--business", "acme")] == ["helpdesk"]
    assert listed(env, "--business", "initech") == []
    none = commq("keys", "list", "--business", "initech", env=env)
    assert none.returncode == 0 and none.stdout.startswith("no API keys for business initech")
    empty = commq("keys", "list", "--business", "", env=env)  # an unset "$BUSINESS"
    assert empty.returncode == 1 and empty.stderr.startswith("error: --business is empty")


def test_a_revoked_key_is_refused_by_the_api_and_the_revocation_is_audited(
    env: dict[str, str],
) -> None:
    create(env, "admin", "root")
    shop = create(env, "manager", "ops desk", "acme")
    assert status_with(env, shop) == 200
    [key] = listed(env, "--business", "acme")

    done = commq("keys", "revoke", str(key["id"]), env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"revoked manager key {key['id']} (ops desk, business acme)"
    )
    assert "5 more seconds" in done.stdout and "dashboard sessions" in done.stdout
    assert status_with(env, shop) == 401
    assert [k["name"] for k in listed(env)] == ["root"]
    assert audit_events(env, "key.revoke") == [
        {
            "actorKeyId": "cli",
            "actorName": "commq cli",
            "role": "admin",
            "businessId": "acme",
            "filter": {
                "keyId": key["id"],
                "prefix": key["prefix"],
                "name": "ops desk",
                "role": "manager",
            },
        }
    ]


def test_a_key_is_revoked_by_its_prefix_too(env: dict[str, str]) -> None:
    create(env, "admin", "root")
    shop = create(env, "producer", "shop", "acme")
    done = commq("keys", "revoke", shop.split("_")[1], env=env)
    assert done.returncode == 0, done.stderr
    assert status_with(env, shop) == 401


@pytest.mark.parametrize("reference", ["0123456789ab", "no-such-key"])
def test_an_unknown_key_is_one_line_and_exit_1(env: dict[str, str], reference: str) -> None:
    create(env, "admin", "root")
    done = commq("keys", "revoke", reference, env=env)
    assert done.returncode == 1, done.stdout
    assert done.stderr == f"error: no API key has the id or prefix '{reference}'\n"
    assert len(listed(env)) == 1 and audit_events(env, "key.revoke") == []


def test_a_whole_key_is_refused_and_not_echoed(env: dict[str, str]) -> None:
    create(env, "admin", "root")
    shop = create(env, "support", "helpdesk", "acme")
    done = commq("keys", "revoke", shop, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: that is a whole API key: pass its id or its prefix")
    assert shop not in done.stdout + done.stderr
    assert status_with(env, shop) == 200


def test_the_last_admin_platform_key_is_revoked_only_with_force(env: dict[str, str]) -> None:
    root = create(env, "admin", "root")
    create(env, "admin", "acme admin", "acme")  # one business only: it does not count
    [key] = [k for k in listed(env) if k["businessId"] is None]

    refused = commq("keys", "revoke", str(key["id"]), env=env)

    assert refused.returncode == 1, refused.stdout
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: This is the last admin platform key") and "--force" in line
    assert status_with(env, root) == 200 and audit_events(env, "key.revoke") == []

    forced = commq("keys", "revoke", str(key["id"]), "--force", env=env)

    assert forced.returncode == 0, forced.stderr
    assert "no admin platform key is left" in forced.stderr
    assert status_with(env, root) == 401
    assert len(audit_events(env, "key.revoke")) == 1


def test_an_admin_platform_key_goes_without_force_while_another_remains(
    env: dict[str, str],
) -> None:
    create(env, "admin", "root")
    create(env, "admin", "second root")
    first = listed(env)[0]
    done = commq("keys", "revoke", str(first["id"]), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # an admin platform key is left: no warning
