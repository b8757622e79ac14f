"""cross-tenant shares

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PathText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("source_tenant", sa.String(63), primary_key=True),
        sa.Column("share_id", sa.String(32), primary_key=True),
        sa.Column("target_tenant", sa.String(63), nullable=False),
        sa.Column("path", PathText, nullable=False),
        sa.Column("permission", sa.String(64), nullable=False),
        sa.Column("tuple_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_shares_target", "shares", ["target_tenant", "source_tenant"])


def downgrade() -> None:
    op.drop_table("shares")
