"""tenant records, usage counters, daily usage

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("name", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("plan", sa.String(32), nullable=False, server_default="free"))
        batch.add_column(sa.Column("status", sa.String(16), nullable=False,
                                   server_default="active"))
        batch.add_column(sa.Column("status_reason", sa.String(255), nullable=True))
        batch.add_column(sa.Column("limit_overrides", sa.JSON, nullable=False,
                                   server_default="{}"))
        batch.add_column(sa.Column("settings", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("extra", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("trial_ends_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("updated_at", sa.Float, nullable=True))
    op.create_index("ix_tenants_plan", "tenants", ["plan", "tenant_id"])
    op.create_index("ix_tenants_status", "tenants", ["status", "tenant_id"])
    op.create_table(
        "tenant_usage",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("storage_bytes", sa.BigInteger, nullable=False),
        sa.Column("files", sa.BigInteger, nullable=False),
        sa.Column("users", sa.BigInteger, nullable=False),
        sa.Column("api_calls", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "usage_daily",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("storage_peak_bytes", sa.BigInteger, nullable=False),
        sa.Column("files_peak", sa.BigInteger, nullable=False),
        sa.Column("users_peak", sa.BigInteger, nullable=False),
        sa.Column("api_calls", sa.BigInteger, nullable=False),
    )
    # Existing tenants get counters computed from what they store.
    op.execute("INSERT INTO tenant_usage (tenant_id, storage_bytes, files, users, api_calls) "
               "SELECT t.tenant_id, "
               "COALESCE((SELECT SUM(f.size) FROM files f WHERE f.tenant_id = t.tenant_id "
               "AND f.kind = 'file'), 0), "
               "(SELECT COUNT(*) FROM files f WHERE f.tenant_id = t.tenant_id "
               "AND f.kind = 'file'), "
               "(SELECT COUNT(*) FROM users u WHERE u.tenant_id = t.tenant_id), 0 "
               "FROM tenants t")


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_table("tenant_usage")
    op.drop_index("ix_tenants_status", "tenants")
    op.drop_index("ix_tenants_plan", "tenants")
    with op.batch_alter_table("tenants") as batch:
        for column in ("updated_at", "trial_ends_at", "extra", "settings", "limit_overrides",
                       "status_reason", "status", "plan", "name"):
            batch.drop_column(column)
