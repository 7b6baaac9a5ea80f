"""SQL storage over SQLite and PostgreSQL: the JobStore and KeyStore adapters,
their engine, schema migrations, and the wakeups that tell idle workers of new work."""

from commq.adapters.store.engine import dialect_of, make_engine
from commq.adapters.store.migrate import check_schema, migrate
from commq.adapters.store.sql_job_store import SqlJobStore
from commq.adapters.store.sql_key_store import SqlKeyStore
from commq.adapters.store.wakeup import LocalWakeup, PgWakeup

__all__ = [
    "LocalWakeup",
    "PgWakeup",
    "SqlJobStore",
    "SqlKeyStore",
    "check_schema",
    "dialect_of",
    "make_engine",
    "migrate",
]
