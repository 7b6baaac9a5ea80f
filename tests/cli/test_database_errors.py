"""A database the CLI cannot use is one clear line on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from commq.adapters.store import check_schema
from commq.domain.errors import SchemaMismatchError
from serving import CLI, free_port

#: Every command that opens the database, with arguments that are otherwise fine.
COMMANDS = [
    ["migrate"],
    ["stats"],
    ["stats", "--json"],
    ["prune", "--older-than", "1d"],
    ["keys", "create", "--role", "admin", "--name", "ops"],
    ["keys", "list"],
    ["keys", "revoke", "0123456789ab"],
    ["retry", "01900000-0000-7000-8000-000000000000"],
    ["cancel", "01900000-0000-7000-8000-000000000000"],
    ["enqueue", "--channel", "sms", "--to", "+14155550100", "--business", "acme", "--text", "hi"],
    ["worker"],
    ["serve", "--port", "FREE"],  # never listens: the database fails first
]
#: Stands for a port free when the command runs (a port picked at collection would give
#: the test another name in each collecting process, and could be taken by then).
_FREE_PORT = "FREE"


def commq(args: list[str], database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMQ_")}
    env["COMMQ_DATABASE_URL"] = database_url
    args = [str(free_port()) if arg == _FREE_PORT else arg for arg in args]
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "╭" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unreachable_postgresql_server_is_one_line_naming_it(
    args: list[str], tmp_path: Path
) -> None:
    url = f"postgresql://commq:s3cret@127.0.0.1:{free_port()}/commq"
    done = commq(args, url, tmp_path)
    assert_one_clear_line(done, "127.0.0.1", "Connection refused")
    assert "s3cret" not in done.stderr + done.stdout  # the password is never echoed


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_sqlite_file_in_a_missing_folder_is_one_line_naming_it(
    args: list[str], tmp_path: Path
) -> None:
    done = commq(args, f"sqlite:///{tmp_path}/no/such/folder/commq.db", tmp_path)
    assert_one_clear_line(done, "no/such/folder/commq.db")
    assert "unable to open database file" in done.stderr or "there is no database" in done.stderr


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, just notes\n" * 200)
    done = commq(["stats"], f"sqlite:///{notes}", tmp_path)
    assert_one_clear_line(done, "notes.txt", "not a database")


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_database_is_refused_as_a_setting(url: str, tmp_path: Path) -> None:
    done = commq(["stats"], url, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: COMMQ_DATABASE_URL"), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_migrate_names_the_database_it_migrated_but_never_its_password(
    postgres_url: str, tmp_path: Path
) -> None:
    url = make_url(postgres_url)
    if not url.password:
        url = url.set(password="s3cret")  # a server that trusts the client ignores it
    password = str(url.password)
    done = commq(["migrate"], url.render_as_string(hide_password=False), tmp_path)
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    assert f"{url.host}:{url.port}/{url.database}" in done.stdout and "***" in done.stdout


#: Commands that read, tidy or steer a database someone made (serve and migrate make one).
ON_AN_EXISTING_DATABASE = [
    ["stats"],
    ["stats", "--json"],
    ["worker"],
    ["prune", "--older-than", "1d"],
    ["keys", "list"],
    ["keys", "revoke", "0123456789ab"],
    ["retry", "01900000-0000-7000-8000-000000000000"],
    ["cancel", "01900000-0000-7000-8000-000000000000"],
]


@pytest.mark.parametrize("args", ON_AN_EXISTING_DATABASE, ids=" ".join)
def test_reading_commands_make_no_database_where_a_typo_points(
    args: list[str], tmp_path: Path
) -> None:
    done = commq(args, "sqlite:///./comq.db", tmp_path)
    assert_one_clear_line(done, "there is no database at ./comq.db", "COMMQ_DATABASE_URL")
    assert list(tmp_path.iterdir()) == []  # no empty database file left behind


@pytest.mark.parametrize(
    "args",
    [
        ["stats", "--json"],
        ["prune", "--older-than", "1d"],
        ["keys", "list"],
        ["keys", "revoke", "0123456789ab"],
        ["retry", "01900000-0000-7000-8000-000000000000"],
        ["cancel", "01900000-0000-7000-8000-000000000000"],
    ],
    ids=" ".join,
)
def test_commands_beside_running_workers_ask_for_commq_migrate_and_never_migrate_themselves(
    args: list[str], empty_database_url: str, tmp_path: Path
) -> None:
    # On PostgreSQL a migration beside running workers blocks their claims: it is
    # `commq migrate`'s to do, not a look at the figures.
    if empty_database_url.startswith("sqlite:///"):
        Path(empty_database_url.removeprefix("sqlite:///")).touch()
    done = commq(args, empty_database_url, tmp_path)
    assert_one_clear_line(done, "run `commq migrate`")
    assert done.stdout == ""
    with pytest.raises(SchemaMismatchError, match="no schema"):
        check_schema(empty_database_url)
