"""relation tuples, authz revisions and models, users, API keys

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PathText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rebac_tuples",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("tuple_id", sa.String(32), primary_key=True),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", PathText, nullable=False),
        sa.Column("relation", sa.String(64), nullable=False),
        sa.Column("subject_type", sa.String(64), nullable=False),
        sa.Column("subject_id", PathText, nullable=False),
        sa.Column("subject_relation", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.UniqueConstraint("tenant_id", "object_type", "object_id", "relation",
                            "subject_type", "subject_id", "subject_relation",
                            name="uq_rebac_tuples_key"),
    )
    op.create_index("ix_rebac_tuples_subject", "rebac_tuples",
                    ["tenant_id", "subject_type", "subject_id", "subject_relation",
                     "object_type", "relation"])
    op.create_table(
        "authz_revisions",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "authz_models",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("model_id", sa.String(32), primary_key=True),
        sa.Column("dsl", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("subject_type", sa.String(64), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("last_used_at", sa.Float, nullable=True),
    )
    op.create_index("ix_api_keys_tenant_user", "api_keys", ["tenant_id", "user_id"])


def downgrade() -> None:
    for table in ("api_keys", "users", "authz_models", "authz_revisions", "rebac_tuples"):
        op.drop_table(table)
