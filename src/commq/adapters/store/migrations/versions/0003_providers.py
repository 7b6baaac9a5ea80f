"""Providers: rate-limit buckets, circuit breakers, delivery events, suppressions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Placeholder kept so that later revisions have a fixed parent."""


def downgrade() -> None:
    """Nothing to undo."""
