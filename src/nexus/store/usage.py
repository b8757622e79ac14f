"""Usage counters and daily snapshots; quota charges are conditional updates.

:meth:`UsageRepository.charge` adds deltas only if the result stays within the limits,
in one ``UPDATE … WHERE`` — never read-then-write — so concurrent writers cannot push a
tenant past a hard limit: the database serialises the updates of the one counter row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nexus.store.schema import rate_buckets, tenant_usage, usage_daily

__all__ = ["Usage", "UsageRepository", "utc_day"]

_U = tenant_usage.c
_D = usage_daily.c


@dataclass(frozen=True, slots=True)
class Usage:
    """A tenant's counters."""

    storage_bytes: int
    files: int
    users: int
    api_calls: int


def _unfolded_calls(where: Any = None) -> Any:
    """Requests counted by a tenant's rate bucket and not folded into usage yet, as a
    scalar subquery (correlated with ``tenant_usage`` unless ``where`` names the tenant)."""
    bucket = rate_buckets.c
    return (select(bucket.calls - bucket.calls_billed)
            .where(bucket.tenant_id == _U.tenant_id if where is None else where)
            .scalar_subquery())


def utc_day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


class UsageRepository:
    """SQL access to ``tenant_usage`` and ``usage_daily`` on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    def get(self, tenant_id: str) -> Usage:
        """The tenant's counters; ``api_calls`` includes the requests its rate bucket
        counted and no fold has moved yet (one statement: one snapshot on PostgreSQL
        too, so a fold running meanwhile is seen whole or not at all)."""
        row = self.conn.execute(
            select(_U.storage_bytes, _U.files, _U.users,
                   _U.api_calls + func.coalesce(_unfolded_calls(), 0))
            .where(_U.tenant_id == tenant_id)).first()
        return Usage(*(int(v) for v in row)) if row else Usage(0, 0, 0, 0)

    def charge(self, tenant_id: str, *, storage: int = 0, files: int = 0, users: int = 0,
               max_storage: int | None = None, max_files: int | None = None,
               max_users: int | None = None, now: float) -> Usage | None:
        """Apply the deltas if every increased counter stays within its limit.

        Returns the new usage, or ``None`` when a limit would be exceeded (nothing is
        changed then). Decreases always apply.
        """
        conditions = [_U.tenant_id == tenant_id]
        if storage > 0 and max_storage is not None:
            conditions.append(_U.storage_bytes + storage <= max_storage)
        if files > 0 and max_files is not None:
            conditions.append(_U.files + files <= max_files)
        if users > 0 and max_users is not None:
            conditions.append(_U.users + users <= max_users)
        stmt = (update(tenant_usage).where(*conditions)
                .values(storage_bytes=_U.storage_bytes + storage, files=_U.files + files,
                        users=_U.users + users)
                .returning(_U.storage_bytes, _U.files, _U.users, _U.api_calls))
        row = self.conn.execute(stmt).first()
        if row is None:
            return None
        usage = Usage(*(int(v) for v in row))
        if storage > 0 or files > 0 or users > 0:
            self._record_peak(tenant_id, usage, now)
        return usage

    def set_users(self, tenant_id: str, count: int) -> None:
        """Set the user counter (import recreates users without charging one by one)."""
        self.conn.execute(update(tenant_usage).where(_U.tenant_id == tenant_id)
                          .values(users=count))

    def add_api_calls(self, counts: dict[str, int], now: float) -> None:
        """Add buffered request counts (flushed in batches, not per request)."""
        day = utc_day(now)
        for tenant_id, n in counts.items():
            counted = self.conn.execute(
                update(tenant_usage).where(_U.tenant_id == tenant_id)
                .values(api_calls=_U.api_calls + n).returning(_U.tenant_id)).first()
            if counted is None:  # the tenant was deleted meanwhile: its calls go with it
                continue
            stmt = self._insert(usage_daily).values(
                tenant_id=tenant_id, day=day, storage_peak_bytes=0, files_peak=0,
                users_peak=0, api_calls=n)
            self.conn.execute(stmt.on_conflict_do_update(
                index_elements=["tenant_id", "day"], set_={"api_calls": _D.api_calls + n}))

    def _record_peak(self, tenant_id: str, usage: Usage, now: float) -> None:
        stmt = self._insert(usage_daily).values(
            tenant_id=tenant_id, day=utc_day(now), storage_peak_bytes=usage.storage_bytes,
            files_peak=usage.files, users_peak=usage.users, api_calls=0)
        greatest = func.max if self.conn.dialect.name == "sqlite" else func.greatest
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["tenant_id", "day"],
            set_={"storage_peak_bytes": greatest(_D.storage_peak_bytes, usage.storage_bytes),
                  "files_peak": greatest(_D.files_peak, usage.files),
                  "users_peak": greatest(_D.users_peak, usage.users)}))

    def month(self, tenant_id: str, month: str, *, unfolded: bool = False) -> dict[str, int]:
        """Peaks and API-call total over the days of ``month`` (``YYYY-MM``); with
        ``unfolded`` (the current month) also the requests no fold has moved yet."""
        calls = func.coalesce(func.sum(_D.api_calls), 0)
        if unfolded:
            calls = calls + func.coalesce(
                _unfolded_calls(rate_buckets.c.tenant_id == tenant_id), 0)
        row = self.conn.execute(select(
            func.coalesce(func.max(_D.storage_peak_bytes), 0),
            func.coalesce(func.max(_D.files_peak), 0),
            func.coalesce(func.max(_D.users_peak), 0),
            calls,
        ).where(_D.tenant_id == tenant_id, _D.day.like(f"{month}-%"))).first()
        keys = ("storage_peak_bytes", "files_peak", "users_peak", "api_calls")
        return {k: int(v) for k, v in zip(keys, row or (0, 0, 0, 0), strict=True)}

    def totals(self) -> dict[str, Any]:
        """Fleet-wide sums (one aggregate query)."""
        row = self.conn.execute(select(
            func.count(), func.coalesce(func.sum(_U.users), 0),
            func.coalesce(func.sum(_U.storage_bytes), 0))).first()
        return {"tenants": int(row[0]), "users": int(row[1]), "storage_bytes": int(row[2])}

    def delete(self, tenant_id: str) -> None:
        """Every counter of the tenant, its rate bucket and unfolded request count too."""
        self.conn.execute(usage_daily.delete().where(_D.tenant_id == tenant_id))
        self.conn.execute(tenant_usage.delete().where(_U.tenant_id == tenant_id))
        self.conn.execute(rate_buckets.delete().where(rate_buckets.c.tenant_id == tenant_id))
