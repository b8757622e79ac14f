"""coherence events and shared rate buckets: what several processes must agree on

Revision ID: 0009
Revises: 0008

``cache_events`` tells other processes on SQLite (``--workers``) which cached tenant
state or tuple revision changed (PostgreSQL carries the same through NOTIFY);
``rate_buckets`` holds each tenant's token bucket and its not-yet-billed request count,
so that every process draws from one bucket.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "rate_buckets",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("calls", sa.BigInteger, nullable=False, default=0),
        sa.Column("calls_billed", sa.BigInteger, nullable=False, default=0),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_table("cache_events")
