"""Throwaway databases: a SQLite file in a temp dir, or ``commq_bench_<random>`` on PostgreSQL.

Everything stays on 127.0.0.1; every database made here is dropped on exit.
The server's other databases (``test`` included) are never touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

#: The admin database of the server the benchmark uses (env BENCH_POSTGRES_URL overrides).
POSTGRES_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pg_url(name: str) -> str:
    """The URL of database ``name`` on the benchmark's server."""
    base, _, _ = POSTGRES_SERVER.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def postgres_database(label: str) -> Iterator[str]:
    """A fresh empty PostgreSQL database; yields its URL and drops it afterwards."""
    name = f"commq_bench_{label}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_url(name)
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def sqlite_database(label: str) -> Iterator[str]:
    """A fresh SQLite file URL in a temp dir (BENCH_TMPDIR, else the system's); removed after."""
    folder = Path(
        tempfile.mkdtemp(prefix=f"commq_bench_{label}_", dir=os.environ.get("BENCH_TMPDIR"))
    )
    try:
        yield f"sqlite:///{folder / 'commq.db'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def database(backend: str, label: str) -> Iterator[str]:
    """A fresh database URL of ``backend`` ("sqlite" or "postgresql")."""
    maker = sqlite_database if backend == "sqlite" else postgres_database
    with maker(label) as url:
        yield url


def server_version() -> str:
    """The PostgreSQL server's version string."""
    with psycopg.connect(POSTGRES_SERVER) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"
