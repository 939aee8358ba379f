"""Tokens get a public id, a name, an expiry and when they were last used. Tokens issued
before this migration get a fresh id, no name and no expiry.

(Queue membership, `submitters` and `viewers`, lives in the queue documents: no column.)

Revision ID: 0004
Revises: 0003
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("id", sa.String(16), nullable=True))
        batch.add_column(sa.Column("name", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("expires_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.Float, nullable=True))
    tokens = sa.table("tokens", sa.column("digest", sa.String), sa.column("id", sa.String))
    connection = op.get_bind()
    for (token_digest,) in connection.execute(sa.select(tokens.c.digest)).all():
        connection.execute(
            tokens.update()
            .where(tokens.c.digest == token_digest)
            .values(id=secrets.token_hex(6))
        )
    with op.batch_alter_table("tokens") as batch:
        batch.alter_column("id", existing_type=sa.String(16), nullable=False)
        batch.create_index("ix_tokens_id", ["id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_id")
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("name")
        batch.drop_column("id")
