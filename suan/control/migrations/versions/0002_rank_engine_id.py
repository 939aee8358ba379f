"""Ranks record the engine's id for their launch (a Slurm job id, a Ray placement group, a Pod).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ranks") as batch:
        batch.add_column(sa.Column("engine_id", sa.String(255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("ranks") as batch:
        batch.drop_column("engine_id")
