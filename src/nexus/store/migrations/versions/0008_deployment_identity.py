"""deployment identity: the one-row table naming this deployment

Revision ID: 0008
Revises: 0007

The id itself is minted by ``bootstrap`` (nexus.service.deployment), which also records
it in the data directory and the blob store; a migration can reach only the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment",
        sa.Column("singleton", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("deployment_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deployment")
