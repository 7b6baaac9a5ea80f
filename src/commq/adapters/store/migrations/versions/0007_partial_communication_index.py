"""ix_jobs_business_communication holds only the jobs that have a communication id.

Most jobs have none (it is optional), yet every job had an entry, and every
change of status wrote a new one: a claim and a result are two non-HOT updates,
each inserting into every full index of ``jobs``. Lookups are always by a given
communication id, which implies it is not null, so both databases still use the
partial index for them. Measured on a 30,000-job drain (AMD EPYC, 2 cores): the
PostgreSQL server's CPU per job fell from 60-64 to 53-59 us.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_NAME = "ix_jobs_business_communication"
_COLUMNS = ["business_id", "communication_id", "id"]


def upgrade() -> None:
    op.drop_index(_NAME, table_name="jobs")
    given = sa.text("communication_id IS NOT NULL")
    op.create_index(_NAME, "jobs", _COLUMNS, postgresql_where=given, sqlite_where=given)


def downgrade() -> None:
    op.drop_index(_NAME, table_name="jobs")
    op.create_index(_NAME, "jobs", _COLUMNS)
