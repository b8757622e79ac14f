"""files and tenants

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PathText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(63).with_variant(sa.String(63, collation="C"),
                  "postgresql"), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("path", PathText, primary_key=True),
        sa.Column("parent", PathText, nullable=False),
        sa.Column("kind", sa.String(9), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("modified_at", sa.Float, nullable=False),
    )
    op.create_index("ix_files_tenant_parent_path", "files", ["tenant_id", "parent", "path"])
    op.create_index("ix_files_tenant_digest", "files", ["tenant_id", "digest"])


def downgrade() -> None:
    op.drop_table("files")
    op.drop_table("tenants")
