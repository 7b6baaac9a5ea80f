"""The claim's picking query as a PostgreSQL function with its plan pinned.

A queue's statistics are always stale: the pending rows change wholesale between
two ANALYZEs, and a fresh table has none. Guessing a handful of due rows, the
planner fetches *every* due row through ix_jobs_due and sorts them all for each
claim of 100 (17.7 ms on a fresh 20,000-job backlog, growing with it; ``python
-m bench.micro claim-plan``). Inside this function sorting is switched off, so the
one plan left walks ix_jobs_claim in claim order and stops after ``n`` rows
(0.2 ms), skipping jobs
scheduled later on the index itself (run_at is one of its columns). The setting
is the function's own: the outer UPDATE and its triggers keep the planner's
defaults. SQLite needs nothing of the kind.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_DUE_IDS = """
CREATE FUNCTION commq_due_ids(n integer, skipped text[]) RETURNS SETOF varchar
LANGUAGE sql VOLATILE
SET enable_sort = off
AS $$
    SELECT id FROM jobs
    WHERE status = 'pending'
      AND run_at <= statement_timestamp()
      AND channel <> ALL (skipped)
    ORDER BY priority DESC, run_at, id
    LIMIT n
    FOR UPDATE SKIP LOCKED
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_DUE_IDS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION commq_due_ids(integer, text[])")
