"""audit retention: where a pruned chain starts

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_heads") as batch:
        batch.add_column(sa.Column("base_seq", sa.BigInteger, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("base_hash", sa.String(64), nullable=False,
                                   server_default="0" * 64))


def downgrade() -> None:
    with op.batch_alter_table("audit_heads") as batch:
        batch.drop_column("base_hash")
        batch.drop_column("base_seq")
