"""Operations: tables and indexes for bulk actions, audit listing, rollups, alerts, retention.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Placeholder kept so that later revisions have a fixed parent."""


def downgrade() -> None:
    """Nothing to undo."""
