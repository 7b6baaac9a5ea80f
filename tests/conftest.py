"""Database fixtures shared by the whole suite.

- ``sqlite_url``: a migrated SQLite file under the test's tmp_path (a copy of a
  template migrated once per session).
- ``postgres_url``: a fresh migrated PostgreSQL database per test, created from
  a template database migrated once per session, dropped afterwards. The server
  is ``COMMQ_TEST_POSTGRES_URL`` (default postgres@127.0.0.1:5432/test); when it
  is unreachable the tests skip, or fail when ``CI=true``.
- ``database_url``: both of the above, one test run each (the PostgreSQL one
  carries the ``postgres`` mark). ``empty_database_url``: the same, unmigrated.
- ``store_engine``, ``job_store``, ``key_store``: the stores over ``database_url``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore, SqlKeyStore, make_engine, migrate
from needs import missing

_DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "commq.db"
    migrate(f"sqlite:///{path}")
    # Closing the last connection checkpoints the WAL into the file, so one copy is whole.
    assert not path.with_name("commq.db-wal").exists()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """A migrated SQLite database file of this test's own."""
    path = tmp_path / "commq.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine over ``sqlite_url``, disposed after the test."""
    built = make_engine(sqlite_url)
    yield built
    await built.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a reachable PostgreSQL server's admin database (skips or fails if none)."""
    configured = os.environ.get("COMMQ_TEST_POSTGRES_URL")
    candidates = [configured] if configured else [_DEFAULT_POSTGRES, _with_user(_DEFAULT_POSTGRES)]
    problems = []
    for url in candidates:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error as error:
            problems.append(f"{error}".strip())
    missing(f"PostgreSQL not reachable at {candidates[0]}: {problems[0]}")


def _with_user(url: str, user: str = "root") -> str:
    return make_url(url).set(username=user).render_as_string(hide_password=False)


def _database_url(server: str, name: str) -> str:
    return make_url(server).set(database=name).render_as_string(hide_password=False)


@contextmanager
def _temporary_database(server: str, prefix: str, template: str | None = None) -> Iterator[str]:
    name = f"{prefix}_{secrets.token_hex(6)}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(create)
    try:
        yield name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def _postgres_template(postgres_server: str) -> Iterator[str]:
    with _temporary_database(postgres_server, "commq_tpl") as name:
        migrate(_database_url(postgres_server, name))
        yield name


@pytest.fixture
def postgres_url(postgres_server: str, _postgres_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own, dropped after it."""
    with _temporary_database(postgres_server, "commq_t", _postgres_template) as name:
        yield _database_url(postgres_server, name)


@pytest.fixture(params=_BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated database of this test's own, on each backend in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(params=_BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    with _temporary_database(server, "commq_t") as name:
        yield _database_url(server, name)


@pytest.fixture
async def store_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine over ``database_url``, disposed after the test."""
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def job_store(store_engine: AsyncEngine) -> SqlJobStore:
    """The job store over ``database_url``."""
    return SqlJobStore(store_engine)


@pytest.fixture
def key_store(store_engine: AsyncEngine) -> SqlKeyStore:
    """The key store over ``database_url``."""
    return SqlKeyStore(store_engine)
