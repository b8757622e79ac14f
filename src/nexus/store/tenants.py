"""The tenant registry: which tenants exist. The tenancy issue grows this into full records."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from nexus.store.schema import tenants

__all__ = ["TenantRepository"]


class TenantRepository:
    """SQL access to the ``tenants`` table on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def register(self, tenant_id: str, now: float) -> bool:
        """Record ``tenant_id`` unless it is known; True if this call added it."""
        module = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        stmt = module.insert(tenants).values(tenant_id=tenant_id, created_at=now)
        return self.conn.execute(stmt.on_conflict_do_nothing()).rowcount == 1

    def exists(self, tenant_id: str) -> bool:
        query = select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)
        return self.conn.execute(query).first() is not None

    def ids(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        """Tenant ids in ascending order, starting after ``after``."""
        query = select(tenants.c.tenant_id)
        if after is not None:
            query = query.where(tenants.c.tenant_id > after)
        query = query.order_by(tenants.c.tenant_id).limit(limit)
        return [row[0] for row in self.conn.execute(query)]

    def remove(self, tenant_id: str) -> bool:
        result = self.conn.execute(delete(tenants).where(tenants.c.tenant_id == tenant_id))
        return result.rowcount == 1
