"""Tenant records: the registry of tenants with plan, status, overrides and settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nexus.store import changes
from nexus.store.schema import rate_buckets, tenant_usage, tenants

__all__ = ["TenantRecord", "TenantRepository"]

_T = tenants.c


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """One tenant as stored."""

    tenant_id: str
    created_at: float
    name: str
    plan: str
    status: str
    status_reason: str | None
    limit_overrides: dict[str, Any]
    settings: dict[str, Any]
    extra: dict[str, Any]
    trial_ends_at: float | None
    updated_at: float | None
    incarnation: str = ""


def _record(row: Any) -> TenantRecord:
    return TenantRecord(row.tenant_id, row.created_at, row.name, row.plan, row.status,
                        row.status_reason, dict(row.limit_overrides or {}),
                        dict(row.settings or {}), dict(row.extra or {}), row.trial_ends_at,
                        row.updated_at, row.incarnation)


class TenantRepository:
    """SQL access to ``tenants`` on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    def register(self, tenant_id: str, incarnation: str, now: float, *, name: str | None = None,
                 plan: str = "free", status: str = "active",
                 limit_overrides: dict[str, Any] | None = None,
                 settings: dict[str, Any] | None = None,
                 trial_ends_at: float | None = None) -> str | None:
        """Create the tenant (and its zeroed usage counters) unless it exists, as a new
        incarnation; its token if this call created it, else ``None``.

        Only :func:`nexus.service.tenants.register_tenant` calls this."""
        stmt = self._insert(tenants).values(
            tenant_id=tenant_id, incarnation=incarnation, created_at=now,
            name=name or tenant_id, plan=plan, status=status,
            limit_overrides=limit_overrides or {}, settings=settings or {}, extra={},
            trial_ends_at=trial_ends_at, updated_at=now)
        # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT.
        inserted = stmt.on_conflict_do_nothing().returning(_T.tenant_id)
        created = self.conn.execute(inserted).first() is not None
        if created:
            # A bucket a request of the previous incarnation left behind is not this one's.
            self.conn.execute(rate_buckets.delete().where(
                rate_buckets.c.tenant_id == tenant_id))
            self.conn.execute(self._insert(tenant_usage).values(
                tenant_id=tenant_id, storage_bytes=0, files=0, users=0,
                api_calls=0).on_conflict_do_nothing())
            changes.publish(self.conn, changes.TENANT, tenant_id)  # caches may say "absent"
        return incarnation if created else None

    def incarnation(self, tenant_id: str, *, lock: bool = False) -> str | None:
        """The current incarnation token of ``tenant_id``, ``None`` if it does not exist;
        ``lock`` holds the row (shared) until the transaction ends, so the tenant cannot be
        deleted under a writer that relies on the answer."""
        query = select(_T.incarnation).where(_T.tenant_id == tenant_id)
        if lock:
            query = query.with_for_update(read=True)
        return self.conn.execute(query).scalar_one_or_none()

    def exists(self, tenant_id: str) -> bool:
        query = select(_T.tenant_id).where(_T.tenant_id == tenant_id)
        return self.conn.execute(query).first() is not None

    def get(self, tenant_id: str, *, for_update: bool = False) -> TenantRecord | None:
        query = select(tenants).where(_T.tenant_id == tenant_id)
        if for_update:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return _record(row) if row else None

    def update(self, tenant_id: str, **values: Any) -> bool:
        result = self.conn.execute(update(tenants).where(_T.tenant_id == tenant_id)
                                   .values(**values))
        if result.rowcount == 1:
            changes.publish(self.conn, changes.TENANT, tenant_id)
        return result.rowcount == 1

    def ids(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        """Tenant ids in ascending order, starting after ``after``."""
        query = select(_T.tenant_id)
        if after is not None:
            query = query.where(_T.tenant_id > after)
        query = query.order_by(_T.tenant_id).limit(limit)
        return [row[0] for row in self.conn.execute(query)]

    def iter_ids(self, *, page: int = 1000) -> Iterator[str]:
        """Every tenant id in ascending order, fetched a page at a time."""
        after = None
        while batch := self.ids(after=after, limit=page):
            yield from batch
            after = batch[-1]

    def list(self, *, plan: str | None = None, status: str | None = None,
             after: str | None = None, limit: int = 100) -> list[TenantRecord]:
        query = select(tenants)
        if plan is not None:
            query = query.where(_T.plan == plan)
        if status is not None:
            query = query.where(_T.status == status)
        if after is not None:
            query = query.where(_T.tenant_id > after)
        query = query.order_by(_T.tenant_id).limit(limit)
        return [_record(r) for r in self.conn.execute(query)]

    def count_by(self, column: str) -> dict[str, int]:
        """Tenants per plan or per status (one aggregate query)."""
        col = _T.plan if column == "plan" else _T.status
        rows = self.conn.execute(select(col, func.count()).group_by(col))
        return {row[0]: int(row[1]) for row in rows}

    def remove(self, tenant_id: str) -> bool:
        self.conn.execute(delete(tenant_usage).where(tenant_usage.c.tenant_id == tenant_id))
        result = self.conn.execute(delete(tenants).where(_T.tenant_id == tenant_id))
        if result.rowcount == 1:
            changes.publish(self.conn, changes.TENANT, tenant_id)
        return result.rowcount == 1
