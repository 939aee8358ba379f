"""Operators' cordons and drains of nodes, kept across restarts and changes of leader.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_overrides",
        sa.Column("node", sa.String(255), primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("by", sa.String(63), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("drain_at", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("node_overrides")
