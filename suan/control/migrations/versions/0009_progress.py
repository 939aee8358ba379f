"""Progress records that ranks print in their logs, as the server read them.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "progress",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(80), sa.ForeignKey("jobs.id", ondelete="CASCADE")),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=True),
        sa.Column("step_time_s", sa.Float, nullable=True),
        sa.Column("checkpoint_s", sa.Float, nullable=True),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("ix_progress_job", "progress", ["job_id", "attempt", "rank"])


def downgrade() -> None:
    op.drop_index("ix_progress_job", "progress")
    op.drop_table("progress")
