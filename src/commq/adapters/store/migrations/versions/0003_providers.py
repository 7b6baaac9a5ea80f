"""Providers: rate-limit slots, circuit breakers, delivery events, suppressions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# timestamptz on PostgreSQL; fixed-width UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' on SQLite.
_TIME = sa.DateTime(timezone=True).with_variant(sa.String(26), "sqlite")


def upgrade() -> None:
    op.create_table(
        "provider_rates",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("next_slot", sa.Float(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_provider_rates"),
    )
    op.create_table(
        "circuits",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", _TIME),
        sa.Column("probe_started_at", _TIME),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("provider", "scope", name="pk_circuits"),
    )
    op.create_table(
        "delivery_events",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.String(36)),
        sa.Column("received_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("provider", "event_id", name="pk_delivery_events"),
    )
    op.create_table(
        "suppressions",
        sa.Column("business_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(36)),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("business_id", "channel", "recipient", name="pk_suppressions"),
    )
    where = sa.text("provider_message_id IS NOT NULL")
    op.create_index(
        "ix_jobs_provider_message",
        "jobs",
        ["provider", "provider_message_id"],
        postgresql_where=where,
        sqlite_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_provider_message", "jobs")
    for table in ("suppressions", "delivery_events", "circuits", "provider_rates"):
        op.drop_table(table)
