"""What state each tenant is in, as fast as a dict lookup.

Read on every request (admission) and on every cross-tenant permission check (a share
out of a suspended tenant stops resolving), so answers are cached: changes made by this
process are seen at once (:meth:`TenantStates.forget`), other processes' when
:mod:`nexus.service.coherence` delivers their event — within ``ttl`` seconds when it
cannot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nexus.errors import TenantSuspendedError
from nexus.service.coherence import Coherence, CoherentCache
from nexus.store import Database, TenantRepository
from nexus.tenancy.lifecycle import BLOCKED

__all__ = ["AUDIT_READ_MODES", "TenantState", "TenantStates", "audit_read_mode",
           "refuse_blocked", "trial_over"]


@dataclass(frozen=True, slots=True)
class TenantState:
    """The parts of a tenant record that admission needs."""

    plan: str
    status: str
    status_reason: str | None
    trial_ends_at: float | None
    audit_reads: str = "batched"
    incarnation: str = ""
    #: ``settings.allow_public_sharing``: may its files be handed out as signed URLs
    #: (unset: yes).
    allow_public_sharing: bool = True


#: ``settings.audit_reads``: how a tenant's read events are recorded (docs/audit.md).
AUDIT_READ_MODES = ("sync", "batched", "off")


def audit_read_mode(value: object) -> str:
    """``settings.audit_reads`` as one of :data:`AUDIT_READ_MODES`. The booleans of older
    settings mean ``batched`` (true) and ``off`` (false); any other value — only a
    hand-written ``.tenant.json`` can hold one — the strictest, ``sync``."""
    if value is True or value is None:
        return "batched"
    if value is False:
        return "off"
    return value if isinstance(value, str) and value in AUDIT_READ_MODES else "sync"


class TenantStates:
    """A short-lived cache of :class:`TenantState` per tenant."""

    def __init__(self, db: Database, *, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 coherence: Coherence | None = None) -> None:
        self._db = db
        self._coherence = coherence or Coherence()
        self._cache: CoherentCache[str, TenantState] = CoherentCache(
            self._coherence, ttl=ttl, clock=clock, keep_missing=True)
        self._coherence.subscribe(lambda _kind, tenant_id: self.forget(tenant_id),
                                  self._cache.clear)

    def get(self, tenant_id: str, *, fresh: bool = False) -> TenantState | None:
        """The tenant's state, or ``None`` if no such tenant exists; ``fresh`` reads the
        record (and refreshes the cache) even within the ttl."""
        return self._cache.get(tenant_id, self._load, fresh=fresh)

    def _load(self, tenant_id: str) -> TenantState | None:
        with self._db.read() as conn:
            record = TenantRepository(conn).get(tenant_id)
        return None if record is None else TenantState(
            record.plan, record.status, record.status_reason, record.trial_ends_at,
            audit_read_mode(record.settings.get("audit_reads")), record.incarnation,
            record.settings.get("allow_public_sharing", True) is not False)

    def audit_reads(self, tenant_id: str) -> str:
        """How reads in this tenant are audited: ``sync``, ``batched`` (the default) or
        ``off`` (``settings.audit_reads``); the default for the system log."""
        state = self.get(tenant_id)
        return state.audit_reads if state is not None else "batched"

    def incarnation(self, tenant_id: str) -> str | None:
        """The tenant's current incarnation token, ``None`` if it does not exist."""
        state = self.get(tenant_id)
        return state.incarnation if state is not None else None

    def live(self, tenant_id: str, incarnation: str | None, *,
             fresh: bool = False) -> TenantState:
        """The tenant's state; :class:`TenantSuspendedError` if it is gone, or is another
        incarnation than ``incarnation`` (when given)."""
        state = self.get(tenant_id, fresh=fresh)
        if state is None or (incarnation is not None and incarnation != state.incarnation):
            raise TenantSuspendedError(f"tenant {tenant_id} does not exist (any more)",
                                       tenant_id=tenant_id)
        return state

    def require_open(self, tenant_id: str, incarnation: str | None, now: float) -> None:
        """Refuse, as admission does, a tenant that is gone, suspended, cancelled or past
        its trial's end. Reads the record fresh: a stream in progress re-checks with this
        (:mod:`nexus.service.streams`), and another process's suspension must not wait
        for the cache's ttl."""
        state = self.live(tenant_id, incarnation, fresh=True)
        if trial_over(state, now):
            # Admission ends the trial on the tenant's next request; until then it is
            # refused as that request will find it.
            refuse_blocked(tenant_id, "suspended", "trial ended")
        refuse_blocked(tenant_id, state.status, state.status_reason)

    def forget(self, tenant_id: str) -> None:
        """Drop the cached state after this process changed the tenant."""
        self._cache.forget(tenant_id)


def trial_over(state: TenantState, now: float) -> bool:
    """A trial whose end has passed (admission then ends it)."""
    return state.status == "trial" and state.trial_ends_at is not None \
        and state.trial_ends_at <= now


def refuse_blocked(tenant_id: str, status: str, reason: str | None) -> None:
    """:class:`TenantSuspendedError` for a tenant whose ``status`` serves no requests."""
    if status in BLOCKED:
        shown = f": {reason}" if reason else ""
        raise TenantSuspendedError(f"tenant {tenant_id} is {status}{shown}",
                                   tenant_id=tenant_id, status=status)
