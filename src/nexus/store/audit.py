"""The audit repository: append (in the caller's transaction), read, nothing else.

There is deliberately no update or delete of events, except dropping a whole deleted
tenant's log (its tombstone stays in the system log).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nexus.store.schema import audit_events, audit_heads

__all__ = ["GENESIS", "AuditEvent", "AuditRepository", "event_hash"]

GENESIS = "0" * 64
_E = audit_events.c
_H = audit_heads.c


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event as stored."""

    tenant_id: str
    seq: int
    at: float
    user_id: str | None
    key_id: str | None
    action: str
    target: str | None
    result: str
    detail: str | None
    request_id: str | None
    client: str | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the event's canonical JSON."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _hashed_fields(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in ("tenant_id", "seq", "at", "user_id", "key_id", "action",
                                  "target", "result", "detail", "request_id", "client")}


# The append path's statements, built once. _ADVANCE locks the chain's head row.
_ADVANCE = (update(audit_heads).where(_H.tenant_id == bindparam("t"))
            .values(seq=_H.seq + 1).returning(_H.seq, _H.hash))
_ADVANCE_BY = (update(audit_heads).where(_H.tenant_id == bindparam("t"))
               .values(seq=_H.seq + bindparam("n")).returning(_H.seq, _H.hash))
_SET_HASH = (update(audit_heads).where(_H.tenant_id == bindparam("t"))
             .values(hash=bindparam("h")))
_INSERT = audit_events.insert()


class AuditRepository:
    """SQL access to ``audit_events`` and ``audit_heads`` on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    def append(self, tenant_id: str, **fields: Any) -> AuditEvent:
        """Add the next event of ``tenant_id``'s chain. Concurrent appenders serialise on
        the chain's head row, so sequence numbers have no gaps and no duplicates."""
        return self.append_many(tenant_id, [fields])[0]

    def append_many(self, tenant_id: str, batch: list[dict[str, Any]]) -> list[AuditEvent]:
        """Add ``batch`` (each an event's fields) to the chain in order: one advance of
        the head by ``len(batch)``, one head update and one multi-row insert, whatever
        the batch's size."""
        n = len(batch)
        head = self.conn.execute(_ADVANCE_BY, {"t": tenant_id, "n": n}).first()
        if head is None:  # the chain's first event
            self.conn.execute(self._insert(audit_heads).values(
                tenant_id=tenant_id, seq=0, hash=GENESIS, base_seq=0,
                base_hash=GENESIS).on_conflict_do_nothing())
            head = self.conn.execute(_ADVANCE_BY, {"t": tenant_id, "n": n}).one()
        first, prev = int(head[0]) - n + 1, head[1]
        events = []
        for i, fields in enumerate(batch):
            event = {"tenant_id": tenant_id, "seq": first + i, **fields, "prev_hash": prev}
            event["hash"] = prev = event_hash(prev, _hashed_fields(event))
            events.append(event)
        self.conn.execute(_SET_HASH, {"t": tenant_id, "h": prev})
        self.conn.execute(_INSERT, events)
        return [AuditEvent(**e) for e in events]

    def events(self, tenant_id: str, *, after_seq: int = 0, since: float | None = None,
               until: float | None = None, user_id: str | None = None,
               action: str | None = None, limit: int = 1000) -> list[AuditEvent]:
        query = select(audit_events).where(_E.tenant_id == tenant_id, _E.seq > after_seq)
        if since is not None:
            query = query.where(_E.at >= since)
        if until is not None:
            query = query.where(_E.at < until)
        if user_id is not None:
            query = query.where(_E.user_id == user_id)
        if action is not None:
            query = query.where(_E.action == action)
        rows = self.conn.execute(query.order_by(_E.seq).limit(limit))
        return [AuditEvent(**r._mapping) for r in rows]

    def head(self, tenant_id: str) -> tuple[int, str]:
        row = self.conn.execute(select(_H.seq, _H.hash).where(_H.tenant_id == tenant_id)).first()
        return (int(row[0]), row[1]) if row else (0, GENESIS)

    def verify(self, tenant_id: str) -> tuple[int, list[str]]:
        """Walk the chain: ``(events checked, problems)``."""
        problems: list[str] = []
        # The head first: every event up to it is committed (an append moves the head in
        # its own transaction), and events appended during the walk lie beyond it.
        head_seq, head_hash = self.head(tenant_id)
        base = self.conn.execute(select(_H.base_seq, _H.base_hash)
                                 .where(_H.tenant_id == tenant_id)).first()
        expected_seq, prev = (int(base[0]) + 1, base[1]) if base else (1, GENESIS)
        count = 0
        while expected_seq <= head_seq and (
                batch := self.events(tenant_id, after_seq=expected_seq - 1, limit=5000)):
            for event in batch:
                if event.seq > head_seq:
                    break
                count += 1
                if event.seq != expected_seq:
                    problems.append(f"events {expected_seq}..{event.seq - 1} are missing")
                if event.prev_hash != prev:
                    problems.append(f"event {event.seq}: does not chain to its predecessor")
                recomputed = event_hash(event.prev_hash, _hashed_fields(event.to_dict()))
                if recomputed != event.hash:
                    problems.append(f"event {event.seq}: content was altered")
                expected_seq, prev = event.seq + 1, event.hash
            if batch[-1].seq > head_seq:
                break
        if head_seq == 0 and self.events(tenant_id, after_seq=0, limit=1):
            problems.append("events exist but the log's head is missing")
        if head_seq != expected_seq - 1 or (count and head_hash != prev):
            problems.append(f"the log ends at event {expected_seq - 1} but its head says "
                            f"{head_seq}: events were removed")
        return count, problems

    def prune(self, tenant_id: str, before: float) -> int:
        """Drop the events older than ``before`` (retention). The chain stays verifiable:
        the head remembers the last dropped event's sequence number and hash."""
        last = self.conn.execute(
            select(_E.seq, _E.hash).where(_E.tenant_id == tenant_id, _E.at < before)
            .order_by(_E.seq.desc()).limit(1)).first()
        if last is None:
            return 0
        removed = self.conn.execute(delete(audit_events).where(
            _E.tenant_id == tenant_id, _E.seq <= last[0])).rowcount
        self.conn.execute(update(audit_heads).where(_H.tenant_id == tenant_id)
                          .values(base_seq=last[0], base_hash=last[1]))
        return int(removed)

    def delete_tenant(self, tenant_id: str) -> None:
        self.conn.execute(delete(audit_events).where(_E.tenant_id == tenant_id))
        self.conn.execute(delete(audit_heads).where(_H.tenant_id == tenant_id))
