"""Option values and help texts, as an operator meets them before anything runs."""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from commq.adapters.store.migrate import HEAD_REVISION
from serving import CLI, free_port


def commq(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMQ_")}
    env["COMMQ_DATABASE_URL"] = f"sqlite:///{cwd / 'commq.db'}"
    env.update(settings)
    env["COLUMNS"] = "200"  # one help line per option, so words are not split by wrapping
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "0"])
def test_serve_refuses_a_port_outside_1_to_65535_before_touching_anything(
    port: str, tmp_path: Path
) -> None:
    done = commq("serve", "--port", port, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "--port" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "commq.db").exists()  # no database made, no first key printed


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [
        ("prune", "--older-than", "COMMQ_RETENTION_DAYS"),
        ("worker", "--concurrency", "COMMQ_CONCURRENCY"),
    ],
)
def test_help_names_the_setting_an_option_defaults_to(
    command: str, option: str, default: str, tmp_path: Path
) -> None:
    shown = commq(command, "--help", cwd=tmp_path)
    assert shown.returncode == 0
    [line] = [line for line in shown.stdout.splitlines() if line.lstrip("│ ").startswith(option)]
    assert default in line, line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "sms"], "error: an SMS needs --text"),
        (["--channel", "email", "--text", "hi"], "error: an e-mail needs --subject"),
        (
            ["--channel", "sms", "--text", "hi", "--payload", '{"body": "x"}'],
            "error: --payload is the whole",
        ),
    ],
)
def test_enqueue_names_the_option_that_is_missing_or_too_many(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = commq("enqueue", "--to", "+14155550100", "--business", "acme", *args, cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith(message), done.stderr
    assert not (tmp_path / "commq.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["stats"],
        ["worker"],
        ["serve", "--port", str(free_port())],
        ["prune", "--older-than", "1d"],
        ["enqueue", "--channel", "email", "--to", "a@example.com", "--business", "acme",
         "--subject", "hi", "--text", "hi"],
    ],
    ids=lambda args: args[0],
)  # fmt: skip
def test_a_provider_without_its_settings_is_one_line_naming_the_variable(
    args: list[str], tmp_path: Path
) -> None:
    assert commq("migrate", cwd=tmp_path).returncode == 0
    done = commq(*args, cwd=tmp_path, COMMQ_PROVIDERS="email=sendgrid")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.splitlines()[-1] == (
        "error: provider sendgrid: provider sendgrid needs COMMQ_SENDGRID_API_KEY"
    )
    assert "Traceback" not in done.stderr and "╭" not in done.stderr


def test_help_and_refused_options_load_none_of_the_database_libraries() -> None:
    # They answer before anything runs, so they should not wait ~2 s for SQLAlchemy,
    # Alembic, the drivers and httpx to load (each command loads them when it runs).
    probe = (
        "import sys\n"
        "from commq.entrypoints.cli import app\n"
        "for args in (['--help'], ['keys', '--help'], ['enqueue', '--channel', 'fax']):\n"
        "    try:\n"
        "        app(args, standalone_mode=False)\n"
        "    except Exception:\n"
        "        pass\n"
        "heavy = ('sqlalchemy', 'alembic', 'psycopg', 'aiosqlite', 'httpx', 'fastapi')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [CLI[0], "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]", done.stdout


def test_version_names_the_release_and_the_database_schema_it_works_on(tmp_path: Path) -> None:
    done = commq("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"commq {version('commq')} (database schema {HEAD_REVISION})\n"
    assert not (tmp_path / "commq.db").exists()  # a question, not a first start
