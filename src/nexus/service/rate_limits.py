"""Rate limits every process of a deployment shares, and the request counts they keep.

:class:`SharedRateLimiter` keeps each tenant's token bucket in the metadata database
(``rate_buckets``): one conditional ``UPDATE`` per admitted request, on connections with
asynchronous commit (:meth:`~nexus.store.Database.counters`), so N replicas or workers
together admit a plan's rate, and the same statement counts the request — exactly, and
durably against the crash of any replica. :func:`fold_api_calls` moves the counts into
the usage counters that billing reads.

Why the database and not Redis (``bench/rate_limits.py``, same machine, same run): an
admission costs 0.04 ms on SQLite (Redis: 0.12 ms) and 0.31 ms on PostgreSQL, 1.6× its
``SELECT 1`` floor; one tenant's row takes ~3,200 admissions/s from 8 threads on
PostgreSQL (Redis: ~7,800), six times the largest plan's rate. Every deployment already
has the database, there is no second store to run, secure and back up, and the count is
in the same store as the bill. So there is no ``--redis-url``; a deployment whose single
tenant needs more than a few thousand requests per second is where one would add it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection

from nexus.store import Database, UsageRepository
from nexus.store.rates import RateBucketRepository
from nexus.tenancy.ratelimit import tokens_needed

__all__ = ["SharedRateLimiter", "fold_api_calls"]

#: What a refused caller is told to wait when the plan's rate is zero.
_NEVER = 60.0


class SharedRateLimiter:
    """Token buckets in ``rate_buckets``: the rule of
    :class:`~nexus.tenancy.RateLimiter`, drawn by every process from one row per
    tenant. ``clock`` is wall time (processes on several machines share it)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def admit(self, key: str, rate: float, burst: int, cost: float = 1.0, *,
              paid: float = 0.0, calls: int = 0) -> float:
        need = tokens_needed(cost, burst, paid)
        now = self._clock()

        def _take(conn: Connection) -> bool:
            return RateBucketRepository(conn).take(key, rate=rate, burst=burst, cost=cost,
                                                   need=need, calls=calls, now=now)

        if self._db.counters(_take):
            return 0.0
        if rate <= 0:
            return _NEVER
        with self._db.read() as conn:
            level = RateBucketRepository(conn).level(key, rate=rate, burst=burst, now=now)
        return max(need - level, 0.0) / rate or 1.0 / rate


def fold_api_calls(db: Database, now: float, tenant_id: str | None = None) -> int:
    """Move the requests counted in the buckets into ``tenant_usage`` and ``usage_daily``
    (of one tenant, or all): in one transaction with the buckets' rows locked, so a fold
    racing another process's fold counts nothing twice. The number of requests moved."""

    def _work(conn: Connection) -> int:
        buckets = RateBucketRepository(conn)
        pending = buckets.pending(tenant_id, lock=True)
        if pending:
            UsageRepository(conn).add_api_calls(pending, now)
            buckets.billed(pending)
        return sum(pending.values())

    return db.run(_work)
