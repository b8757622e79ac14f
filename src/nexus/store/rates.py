"""Per-tenant token buckets and request counts in the database, shared by every process.

:meth:`RateBucketRepository.take` is the whole admission: one conditional ``UPDATE`` that
refills the bucket for the time since its last use, takes the call's tokens only if the
refilled bucket can pay, and counts the call — so N processes draw from one bucket and
one exact count, and the database serialises them on the tenant's row. The count is
folded into ``tenant_usage``/``usage_daily`` later (:meth:`pending` and :meth:`billed`,
in the same transaction as the usage update, so a fold is never lost or counted twice).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nexus.store.schema import rate_buckets

__all__ = ["RateBucketRepository"]

_R = rate_buckets.c
#: Refill arithmetic in floats: a bucket that can pay exactly must not be refused.
_EPSILON = 1e-6

#: Refill for the time since the last use (never negative: clocks of machines differ),
#: capped at the burst; take the cost if that pays ``need``; count the calls.
_TAKE = """UPDATE rate_buckets SET
  tokens = {max}({min}({p}burst)s, tokens + {max}({p}now)s - updated_at, 0) * {p}rate)s),
               {p}floor)s) - {p}cost)s,
  updated_at = {max}(updated_at, {p}now)s), calls = calls + {p}calls)s
WHERE tenant_id = {p}t)s
  AND {min}({p}burst)s, tokens + {max}({p}now)s - updated_at, 0) * {p}rate)s) >= {p}need)s
RETURNING tenant_id"""
_CREATE = """INSERT INTO rate_buckets (tenant_id, tokens, updated_at, calls, calls_billed)
VALUES ({p}t)s, {p}tokens)s, {p}now)s, {p}calls)s, 0)
ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id"""
# psycopg takes %(name)s, sqlite3 :name (written here as ":name)s" and cut below).
_TAKE_PG = _TAKE.format(max="GREATEST", min="LEAST", p="%(")
_CREATE_PG = _CREATE.format(p="%(")
_TAKE_SQLITE = _TAKE.format(max="max", min="min", p=":").replace(")s", "")
_CREATE_SQLITE = _CREATE.format(p=":").replace(")s", "")


class RateBucketRepository:
    """SQL access to ``rate_buckets`` on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        postgres = conn.dialect.name == "postgresql"
        self._insert: Any = postgresql.insert if postgres else sqlite.insert
        self._least: Any = func.least if postgres else func.min
        self._greatest: Any = func.greatest if postgres else func.max

    def _refilled(self, rate: float, burst: float, now: float) -> Any:
        # Clocks of different machines disagree a little: time never runs backwards here.
        elapsed = self._greatest(literal(now) - _R.updated_at, 0.0)
        return self._least(literal(burst), _R.tokens + elapsed * rate)

    def take(self, tenant_id: str, *, rate: float, burst: float, cost: float, need: float,
             calls: int, now: float) -> bool:
        """Take ``cost`` tokens (leaving the bucket at least ``need - cost``, i.e. in debt
        for a cost above what it can hold) and count ``calls`` requests, if the refilled
        bucket holds ``need``; False, changing nothing, if it does not.

        Every request runs this, so it is SQL text sent as it is (building the statement
        with SQLAlchemy's expression language cost ten times the database's work). Each
        statement stands alone: it may run in autocommit."""
        params = {"t": tenant_id, "rate": rate, "burst": burst, "cost": cost,
                  "need": need - _EPSILON, "floor": need, "calls": calls, "now": now}
        postgres = self.conn.dialect.name == "postgresql"
        take, create = (_TAKE_PG, _CREATE_PG) if postgres else (_TAKE_SQLITE, _CREATE_SQLITE)
        if self.conn.exec_driver_sql(take, params).first() is not None:
            return True
        if burst < need - _EPSILON:  # a full bucket could not pay: refused, counted nowhere
            return False
        created = self.conn.exec_driver_sql(create, {
            "t": tenant_id, "tokens": max(burst, need) - cost, "now": now,
            "calls": calls}).first()
        if created is not None:
            return True
        # The row exists: the bucket could not pay, or another process created it between
        # the two statements (then this second try is the real one).
        return self.conn.exec_driver_sql(take, params).first() is not None

    def level(self, tenant_id: str, *, rate: float, burst: float, now: float) -> float:
        """The tokens the bucket holds at ``now`` (a full bucket if it was never used)."""
        value = self.conn.execute(select(self._refilled(rate, burst, now))
                                  .where(_R.tenant_id == tenant_id)).scalar()
        return float(burst if value is None else value)

    def pending(self, tenant_id: str | None = None, *, lock: bool = False) -> dict[str, int]:
        """Requests counted but not yet folded into usage, by tenant (one, or all)."""
        query = select(_R.tenant_id, _R.calls - _R.calls_billed).where(
            _R.calls > _R.calls_billed)
        if tenant_id is not None:
            query = query.where(_R.tenant_id == tenant_id)
        if lock:
            query = query.with_for_update()
        return {str(t): int(n) for t, n in self.conn.execute(query)}

    def billed(self, counts: dict[str, int]) -> None:
        """Mark ``counts`` as folded into usage (call in the fold's transaction)."""
        for tenant_id, n in counts.items():
            self.conn.execute(update(rate_buckets).where(_R.tenant_id == tenant_id)
                              .values(calls_billed=_R.calls_billed + n))

    def delete(self, tenant_id: str) -> None:
        """Forget the tenant's bucket and count (a re-created tenant starts full, at 0)."""
        self.conn.execute(rate_buckets.delete().where(_R.tenant_id == tenant_id))
