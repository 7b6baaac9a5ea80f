"""PostgreSQL's attempts trigger reads each attempt's channel by primary key.

Migration 0002's ``commq_attempts_inserted`` joined the statement's new attempts
to ``jobs`` for their channel. Planned once per session, against statistics that
a queue's churn keeps stale, the join became a hash join over a sequential scan
of ``jobs``: every batch of results read the whole table (20,000 rows: 1.0 ms of
a 4.2 ms write of 100 results; the scan grows with the table). Here each attempt
looks its job up by primary key, once (a materialized CTE, so not once per
grain). Same tables, same keys, same figures. SQLite's row triggers already read
one job by key.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

from commq.adapters.store.migrate import revision_module

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_BY_KEY = """
CREATE OR REPLACE FUNCTION commq_attempts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s smallint := mod(txid_current(), 15) + 1;
BEGIN
    WITH a AS MATERIALIZED (
        SELECT coalesce(n.finished_at, n.started_at) AS at,
               n.business_id,
               (SELECT j.channel FROM jobs AS j WHERE j.id = n.job_id) AS channel,
               coalesce(n.provider, '') AS provider,
               CASE n.outcome WHEN 'succeeded' THEN '' WHEN 'transient_error' THEN 'transient'
                   WHEN 'permanent_error' THEN 'permanent' ELSE 'ambiguous' END AS error_type,
               CASE WHEN n.outcome = 'succeeded' THEN 1 ELSE 0 END AS ok,
               coalesce(n.duration_ms, 0) AS duration_ms
        FROM new_attempts AS n
    )
    INSERT INTO attempt_rollups (grain, bucket_start, business_id, channel, provider,
                                 error_type, slot, succeeded, failed, duration_ms)
    SELECT g.grain, date_trunc(g.grain, a.at, 'UTC'), a.business_id, a.channel, a.provider,
           a.error_type, s, sum(a.ok), sum(1 - a.ok), sum(a.ok * a.duration_ms)
    FROM a CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS g(grain)
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (grain, bucket_start, business_id, channel, provider, error_type, slot)
    DO UPDATE SET succeeded = attempt_rollups.succeeded + excluded.succeeded,
                  failed = attempt_rollups.failed + excluded.failed,
                  duration_ms = attempt_rollups.duration_ms + excluded.duration_ms;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.get_bind().exec_driver_sql(_BY_KEY)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    revision_0002 = revision_module("0002_operations.py")
    body = revision_0002._attempt_rollups_sql("postgresql", "new_attempts", "s")
    op.get_bind().exec_driver_sql(
        "CREATE OR REPLACE FUNCTION commq_attempts_inserted() RETURNS trigger"
        " LANGUAGE plpgsql AS $$\nDECLARE s smallint := mod(txid_current(), 15) + 1;\n"
        f"BEGIN\n    {body};\n    RETURN NULL;\nEND $$"
    )
