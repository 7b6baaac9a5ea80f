"""Alerts: firing and resolved alerts, and their notification state.

Also an index of the attempts that did not succeed, by finish time, so the
failure-rate rule reads a window of attempts without scanning the table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# timestamptz on PostgreSQL; fixed-width UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' on SQLite.
_TIME = sa.DateTime(timezone=True).with_variant(sa.String(26), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("last_notified_at", _TIME),
        sa.Column("resolved_at", _TIME),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    firing = sa.text("status = 'firing'")
    op.create_index(
        "uq_alerts_firing",
        "alerts",
        ["rule", "scope"],
        unique=True,
        postgresql_where=firing,
        sqlite_where=firing,
    )
    op.create_index("ix_alerts_resolved_at", "alerts", ["resolved_at"])
    failed = sa.text("outcome <> 'succeeded'")
    op.create_index(
        "ix_attempts_unsucceeded",
        "attempts",
        ["finished_at", "business_id"],
        postgresql_where=failed,
        sqlite_where=failed,
    )


def downgrade() -> None:
    op.drop_index("ix_attempts_unsucceeded", "attempts")
    op.drop_table("alerts")
