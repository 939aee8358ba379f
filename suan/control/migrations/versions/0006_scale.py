"""Indexes for large queues: jobs in submission order (the API's cursor paging, newest first,
and the reconciler's scan of live jobs, oldest first), and per state in that order.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_submit_time_id", "jobs", ["submit_time", "id"])
    op.create_index("ix_jobs_state_submit_time_id", "jobs", ["state", "submit_time", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_submit_time_id", "jobs")
    op.drop_index("ix_jobs_submit_time_id", "jobs")
