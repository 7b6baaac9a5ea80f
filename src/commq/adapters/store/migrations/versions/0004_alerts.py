"""Alerts: firing and resolved alerts, and their notification state.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Placeholder kept so that later revisions have a fixed parent."""


def downgrade() -> None:
    """Nothing to undo."""
