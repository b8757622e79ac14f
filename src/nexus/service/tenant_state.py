"""What state each tenant is in, as fast as a dict lookup.

Read on every request (admission) and on every cross-tenant permission check (a share
out of a suspended tenant stops resolving), so answers are cached: changes made by this
process are seen at once (:meth:`TenantStates.forget`), other processes' within
``ttl`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nexus.store import Database, TenantRepository

__all__ = ["TenantState", "TenantStates"]


@dataclass(frozen=True, slots=True)
class TenantState:
    """The parts of a tenant record that admission needs."""

    plan: str
    status: str
    status_reason: str | None
    trial_ends_at: float | None
    audit_reads: bool = True
    incarnation: str = ""


class TenantStates:
    """A short-lived cache of :class:`TenantState` per tenant."""

    def __init__(self, db: Database, *, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[TenantState | None, float]] = {}

    def get(self, tenant_id: str) -> TenantState | None:
        """The tenant's state, or ``None`` if no such tenant exists."""
        cached = self._cache.get(tenant_id)
        now = self._clock()
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        with self._db.read() as conn:
            record = TenantRepository(conn).get(tenant_id)
        state = None if record is None else TenantState(
            record.plan, record.status, record.status_reason, record.trial_ends_at,
            bool(record.settings.get("audit_reads", True)), record.incarnation)
        self._cache[tenant_id] = (state, now)
        return state

    def audits_reads(self, tenant_id: str) -> bool:
        """Whether reads in this tenant are audited (``settings.audit_reads``, default on)."""
        state = self.get(tenant_id)
        return state.audit_reads if state is not None else True

    def incarnation(self, tenant_id: str) -> str | None:
        """The tenant's current incarnation token, ``None`` if it does not exist."""
        state = self.get(tenant_id)
        return state.incarnation if state is not None else None

    def forget(self, tenant_id: str) -> None:
        """Drop the cached state after this process changed the tenant."""
        self._cache.pop(tenant_id, None)
