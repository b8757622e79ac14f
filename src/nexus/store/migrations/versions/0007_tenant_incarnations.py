"""tenant incarnations: every reference to a tenant binds to one life of its name

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("incarnation", sa.String(32), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("incarnation", sa.String(32), nullable=True))
    with op.batch_alter_table("shares") as batch:
        batch.add_column(sa.Column("target_incarnation", sa.String(32), nullable=True))
    conn = op.get_bind()
    tenants = sa.table("tenants", sa.column("tenant_id"), sa.column("incarnation"))
    minted: dict[str, str] = {}
    for (tenant_id,) in conn.execute(sa.select(tenants.c.tenant_id)).all():
        minted[tenant_id] = uuid.uuid4().hex[:16]
        conn.execute(tenants.update().where(tenants.c.tenant_id == tenant_id)
                     .values(incarnation=minted[tenant_id]))
    keys = sa.table("api_keys", sa.column("tenant_id"), sa.column("incarnation"))
    shares = sa.table("shares", sa.column("target_tenant"), sa.column("target_incarnation"))
    for tenant_id, token in minted.items():
        conn.execute(keys.update().where(keys.c.tenant_id == tenant_id)
                     .values(incarnation=token))
        conn.execute(shares.update().where(shares.c.target_tenant == tenant_id)
                     .values(target_incarnation=token))
    # Stored subjects that name a tenant or a foreign user now name its incarnation;
    # those naming a tenant that no longer exists are dead and go.
    tuples = sa.table("rebac_tuples", sa.column("tenant_id"), sa.column("tuple_id"),
                      sa.column("object_type"), sa.column("object_id"),
                      sa.column("subject_type"), sa.column("subject_id"))
    rows = conn.execute(sa.select(tuples).where(sa.or_(
        tuples.c.subject_type == "tenant", tuples.c.object_type == "tenant",
        tuples.c.subject_id.like("%/%")))).all()
    for row in rows:
        values = {}
        for column in ("subject", "object"):
            type_, id_ = getattr(row, f"{column}_type"), getattr(row, f"{column}_id")
            if type_ == "file":
                continue
            if type_ == "tenant" and id_ != "*":
                home, rest = id_, ""
            elif "/" in id_:
                home, _, user = id_.partition("/")
                rest = "/" + user
            else:
                continue
            if home not in minted:
                values = None
                break
            values[f"{column}_id"] = f"{home}~{minted[home]}{rest}"
        where = sa.and_(tuples.c.tenant_id == row.tenant_id, tuples.c.tuple_id == row.tuple_id)
        if values is None:
            conn.execute(tuples.delete().where(where))
        elif values:
            conn.execute(tuples.update().where(where).values(**values))
    with op.batch_alter_table("tenants") as batch:
        batch.alter_column("incarnation", existing_type=sa.String(32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("shares") as batch:
        batch.drop_column("target_incarnation")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("incarnation")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("incarnation")
