"""PostgreSQL: attempts go with their job by the jobs' delete trigger, not a foreign key.

The foreign key from ``attempts.job_id`` to ``jobs`` checked every attempt row on
its own: a row trigger running ``SELECT 1 FROM jobs ... FOR KEY SHARE`` through
SPI. On a worker's batch of 100 results it was the largest single part of the
statement that records them (3.2 of 11 ms under auto_explain), for a check that
cannot fail: every attempt is written from the row of its job, in the statement
or transaction that updates that row and so holds its lock. The cascade it gave
now runs once per statement, in the statement trigger that already counts the
deleted jobs (``commq_jobs_deleted``), attempts first as the cascade did.

SQLite keeps its foreign key: there the check is a lookup in the same process.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

from commq.adapters.store.migrate import revision_module

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_FOREIGN_KEY = "fk_attempts_job_id_jobs"


def _deleted_function(*first: str) -> str:
    revision_0002 = revision_module("0002_operations.py")
    body = [*first, revision_0002._counts_sql(revision_0002._PG_OLD_JOBS, "s")]
    statements = "\n    ".join(f"{statement};" for statement in body)
    return (
        "CREATE OR REPLACE FUNCTION commq_jobs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"DECLARE s smallint := {revision_0002._PG_SLOT};\n"
        f"BEGIN\n    {statements}\n    RETURN NULL;\nEND $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint(_FOREIGN_KEY, "attempts", type_="foreignkey")
    cascade = "DELETE FROM attempts AS a USING old_jobs AS o WHERE a.job_id = o.id"
    op.get_bind().exec_driver_sql(_deleted_function(cascade))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.get_bind().exec_driver_sql(_deleted_function())
    op.create_foreign_key(_FOREIGN_KEY, "attempts", "jobs", ["job_id"], ["id"], ondelete="CASCADE")
