"""Job dependencies and arrays: what a job waits for, and the array a job is a member of.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("waits_for", sa.Text, nullable=True))
        batch.add_column(sa.Column("array_id", sa.String(80), nullable=True))
        batch.add_column(sa.Column("array_index", sa.Integer, nullable=True))
        batch.add_column(sa.Column("array_count", sa.Integer, nullable=True))
        batch.add_column(sa.Column("array_limit", sa.Integer, nullable=True))
    op.create_index("ix_jobs_array_id", "jobs", ["array_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_array_id", "jobs")
    with op.batch_alter_table("jobs") as batch:
        for column in ("array_limit", "array_count", "array_index", "array_id", "waits_for"):
            batch.drop_column(column)
