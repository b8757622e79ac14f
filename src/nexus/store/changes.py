"""Change events: how one process tells the others that a cached fact moved.

Every change to a tenant record or to a tenant's tuple revision publishes an event from
inside its own transaction (the repositories that make those changes call
:func:`publish`), so an event exists exactly when its change committed:

- on PostgreSQL as ``NOTIFY nexus_changes`` (delivered at commit, in commit order, to
  every listening connection; :class:`nexus.service.coherence.NotifiedCoherence`);
- on SQLite as a row of ``cache_events``, which the other processes of the same
  database file poll (:class:`nexus.service.coherence.PolledCoherence`). SQLite
  serialises writers, so sequence numbers commit in order and a gap means pruned rows.

An event names a kind (:data:`TENANT`, :data:`TUPLES`, :data:`KEYS`) and a tenant (a key
id for :data:`KEYS`); it carries no values: a receiver only forgets what it cached, and
re-reads the database.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from nexus.store.schema import cache_events

__all__ = ["CHANNEL", "KEYS", "KINDS", "ORIGIN", "TENANT", "TUPLES", "ChangeEvent", "ChangeLog",
           "parse_payload", "publish"]

#: The PostgreSQL notification channel.
CHANNEL = "nexus_changes"
#: The tenant record changed (created, state, plan, limits, settings, deleted).
TENANT = "tenant"
#: The tenant's tuple revision moved (tuples, shares into or out of it, its model).
TUPLES = "tuples"
#: An API key changed (revoked, renamed, new expiry); the event names the key id.
KEYS = "keys"
KINDS = frozenset({TENANT, TUPLES, KEYS})
#: This process, as events name it (for logs and tests; receivers apply their own
#: events too, which is harmless: forgetting twice costs one re-read).
ORIGIN = f"{os.getpid():x}-{uuid.uuid4().hex[:12]}"
#: SQLite keeps about this many events; a poller further behind forgets everything.
_KEEP = 5000


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    seq: int
    kind: str
    tenant_id: str


def publish(conn: Connection, kind: str, tenant_id: str) -> None:
    """Record, inside the caller's transaction, that ``tenant_id``'s ``kind`` changed."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (CHANNEL, f"{kind}:{tenant_id}"))
        return
    seq = conn.execute(insert(cache_events).values(
        origin=ORIGIN, kind=kind, tenant_id=tenant_id,
        created_at=time.time())).inserted_primary_key
    if seq is not None and seq[0] % 500 == 0:  # prune now and then, not on every write
        conn.execute(delete(cache_events).where(cache_events.c.seq <= seq[0] - _KEEP))


def parse_payload(payload: str) -> tuple[str, str] | None:
    """``(kind, tenant_id)`` of a notification's payload; ``None`` if it is not ours."""
    kind, sep, tenant_id = payload.partition(":")
    return (kind, tenant_id) if sep and kind in KINDS and tenant_id else None


class ChangeLog:
    """SQL access to ``cache_events`` (SQLite) on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def latest(self) -> int:
        return int(self.conn.execute(select(func.coalesce(func.max(cache_events.c.seq), 0)))
                   .scalar_one())

    def since(self, seq: int, limit: int) -> Sequence[ChangeEvent]:
        rows = self.conn.execute(
            select(cache_events.c.seq, cache_events.c.kind, cache_events.c.tenant_id)
            .where(cache_events.c.seq > seq).order_by(cache_events.c.seq).limit(limit))
        return [ChangeEvent(int(r.seq), r.kind, r.tenant_id) for r in rows]
