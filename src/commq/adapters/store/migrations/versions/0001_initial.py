"""Initial schema: jobs, attempts, audit_events, api_keys.

Written by hand and frozen: later schema changes go into new revisions, never here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# timestamptz on PostgreSQL; fixed-width UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' on SQLite.
_TIME = sa.DateTime(timezone=True).with_variant(sa.String(26), "sqlite")


def _partial_index(name: str, table: str, columns: list[str | sa.TextClause], where: str) -> None:
    clause = sa.text(where)
    op.create_index(name, table, columns, postgresql_where=clause, sqlite_where=clause)


def upgrade() -> None:
    _create_jobs()
    _create_attempts()
    _create_audit_events()
    _create_api_keys()


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("business_id", sa.Text(), nullable=False),
        sa.Column("communication_id", sa.Text()),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("run_at", _TIME, nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("error_type", sa.String(16)),
        sa.Column("provider", sa.Text()),
        sa.Column("provider_message_id", sa.Text()),
        sa.Column("delivery_status", sa.String(16)),
        sa.Column("idempotency_key", sa.Text()),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME),
        sa.Column("completed_at", _TIME),
        sa.Column("failed_at", _TIME),
        sa.Column("cancelled_at", _TIME),
        sa.Column("lease_token", sa.String(36)),
        sa.Column("lease_expires_at", _TIME),
        sa.Column("worker_id", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    pending, failed = "status = 'pending'", "status = 'failed'"
    _partial_index("ix_jobs_claim", "jobs", [sa.text("priority DESC"), "run_at", "id"], pending)
    _partial_index("ix_jobs_due", "jobs", ["run_at", "id"], pending)
    _partial_index("ix_jobs_business_due", "jobs", ["business_id", "run_at", "id"], pending)
    _partial_index("ix_jobs_lease", "jobs", ["lease_expires_at"], "status = 'processing'")
    _partial_index(
        "ix_jobs_failed", "jobs", [sa.text("failed_at DESC"), sa.text("id DESC")], failed
    )
    _partial_index(
        "ix_jobs_business_failed",
        "jobs",
        ["business_id", sa.text("failed_at DESC"), sa.text("id DESC")],
        failed,
    )
    op.create_index(
        "uq_jobs_business_idempotency",
        "jobs",
        ["business_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index("ix_jobs_business_status", "jobs", ["business_id", "status", "id"])
    op.create_index("ix_jobs_business_id", "jobs", ["business_id", "id"])
    op.create_index(
        "ix_jobs_business_communication", "jobs", ["business_id", "communication_id", "id"]
    )


def _create_attempts() -> None:
    op.create_table(
        "attempts",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("provider", sa.Text()),
        sa.Column("provider_message_id", sa.Text()),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_attempts_job_id_jobs", ondelete="CASCADE"
        ),
    )
    succeeded = "outcome = 'succeeded'"
    _partial_index("ix_attempts_succeeded", "attempts", ["finished_at"], succeeded)
    _partial_index(
        "ix_attempts_business_succeeded", "attempts", ["business_id", "finished_at"], succeeded
    )


def _create_audit_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor_key_id", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("business_id", sa.Text()),
        sa.Column("job_id", sa.String(36)),
        sa.Column("filter", sa.Text()),
        sa.Column("count", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_business_id", "audit_events", ["business_id", "id"])


def _create_api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("business_id", sa.Text()),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )


def downgrade() -> None:
    for table in ("api_keys", "audit_events", "attempts", "jobs"):
        op.drop_table(table)
