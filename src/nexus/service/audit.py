"""The audit log: who did what to which path or object, when, from where, with what result.

Changes are recorded in the same transaction as the change (:meth:`AuditLog.record`), so
an event exists exactly when its change does. Denials and reads have nothing to be atomic
with: they are committed in batches by :mod:`nexus.service.audit_writer` (at most its
delay later), or each in its own transaction for a tenant whose ``settings.audit_reads``
is ``sync``; reads are not recorded at all where it is ``off``. Each tenant's
log is a hash chain with a gapless sequence (``audit_verify`` detects any edited or
missing event); events outside any tenant go to the system log (``_system``).

An event that involves more than one tenant — a principal of one tenant acting on
another's path (through a share, or its alias), or a copy or rename between tenants — is
written into **each** involved tenant's log, in the same transaction, and its ``detail``
names them all (:func:`crossing`), so either log alone tells the story. The system
administrator belongs to no tenant: its events go to the one log :func:`tenant_for` names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from nexus import paths
from nexus.context import client_address, current_request_id, via_signed_url
from nexus.errors import InvalidArgumentError, NexusFileNotFoundError, NexusPermissionError
from nexus.service.access import AccessGate
from nexus.service.audit_writer import AuditWriter, PendingEvent
from nexus.store import Database, TenantRepository
from nexus.store.audit import AuditRepository
from nexus.store.schema import audit_events
from nexus.types import Principal, iso_time, parse_timestamp

__all__ = ["AuditLog", "crossing"]

#: Seconds a query waits for this process's queued events to be committed.
FLUSH_TIMEOUT = 5.0


#: The client column's width. Behind a trusted proxy the address is X-Forwarded-For's,
#: of any length: cut to fit (marked "…"), an event the database would refuse — and the
#: read it records — must not exist.
_CLIENT_WIDTH = int(audit_events.c.client.type.length)


def _client() -> str | None:
    value = client_address.get()
    if value is None or len(value) <= _CLIENT_WIDTH:
        return value
    return value[:_CLIENT_WIDTH - 1] + "…"


def _append(conn: Connection, names: Sequence[str], fields: dict[str, Any]) -> None:
    # Sorted logs: concurrent cross-tenant events lock the chains' heads in one order.
    repo = AuditRepository(conn)
    for name in names:
        repo.append(name, **fields)


def tenant_for(principal: Principal, target: str | None) -> str:
    """The log an event belongs to: the target path's tenant, else the actor's, else system."""
    if target and target.startswith("/"):
        tenant = paths.tenant_of(target)
        if tenant is not None:
            return tenant
    return principal.tenant_id or paths.SYSTEM_PARTITION


def crossing(principal: Principal, log: str, target: str | None,
             between: Sequence[str] = ()) -> tuple[list[str], str | None]:
    """The logs an event goes to (sorted) and, if more than one, the ``detail`` naming
    every tenant involved: ``cross-tenant path=acme principal=beta`` (one path),
    ``cross-tenant src=acme dst=beta principal=beta`` (a copy or rename ``between``
    two paths), ``cross-tenant tenant=acme principal=beta`` (other targets).

    ``log`` is the event's own log. The system administrator has no home tenant: its
    events cross only when a copy or rename moves data between two tenants.
    """
    admin = AccessGate.is_system_admin(principal)
    if admin and not between:
        return [log], None
    if between:
        roles = [("src", paths.tenant_of(between[0])), ("dst", paths.tenant_of(between[1]))]
    else:
        on_path = target is not None and paths.tenant_of(target) == log
        roles = [("path" if on_path else "tenant", log)]
    if not admin:
        roles.append(("principal", principal.tenant_id))
    logs = sorted({log, *(tenant for _, tenant in roles if tenant is not None)})
    if len(logs) == 1:
        return logs, None
    return logs, "cross-tenant " + " ".join(
        f"{role}={tenant or paths.SYSTEM_PARTITION}" for role, tenant in roles)


class AuditLog:
    """Appends and reads audit events."""

    def __init__(self, *, db: Database, clock: Callable[[], float] = time.time,
                 writer: AuditWriter | None = None) -> None:
        self._db = db
        self._clock = clock
        # Without a writer every event is committed at once (the ``sync`` class).
        self._writer = writer
        self._read_mode: Callable[[str], str] = lambda _tenant: "sync"
        self._incarnation: Callable[[str], str | None] = lambda _tenant: None
        self._may_read: Callable[[Principal, str], bool] = \
            lambda p, log: AccessGate.is_system_admin(p)

    def bind(self, *, read_mode: Callable[[str], str],
             incarnation: Callable[[str], str | None],
             may_read: Callable[[Principal, str], bool]) -> None:
        """Late wiring of what the audit log asks of the tenant states and the enforcement
        point (both built after it): how a tenant records reads (``sync``, ``batched``,
        ``off``), a tenant's incarnation, and may this principal read that log
        (``AccessGate.may_read_audit``)."""
        self._read_mode = read_mode
        self._incarnation = incarnation
        self._may_read = may_read

    def record(self, conn: Connection, principal: Principal, action: str,
               target: str | None, *, result: str = "ok", detail: str | None = None,
               tenant: str | None = None, between: Sequence[str] = ()) -> None:
        """Append an event inside the caller's transaction — into every log it involves
        (:func:`crossing`). ``between`` is ``(src, dst)`` of a copy or rename: the event
        goes to ``tenant``, else to ``dst``'s log, and to ``src``'s log too."""
        names, fields = self._event(principal, action, target, result=result, detail=detail,
                                    logs=self._logs(principal, target, tenant, between),
                                    between=between)
        _append(conn, names, fields)

    def record_now(self, principal: Principal, action: str, target: str | None, *,
                   result: str = "ok", detail: str | None = None) -> None:
        """Append an event that has no transaction to join (a denial): batched, unless a
        log it goes to records synchronously. Denials are recorded in every mode."""
        logs = self._logs(principal, target, None, ())
        self._deliver(self._event(principal, action, target, result=result, detail=detail,
                                  logs=logs, between=()),
                      sync=any(self._read_mode(log) == "sync" for log in logs[0]))

    def record_read(self, principal: Principal, action: str, target: str) -> None:
        """A read, in each involved log whose tenant records reads — batched, or at once
        when one of them is ``sync`` (the event stays one event in all its logs). Reads by
        the in-process operator (the embedded engine opened without a key: no credential,
        no request) are not recorded; every keyed principal's are."""
        if principal.key_id is None and AccessGate.is_system_admin(principal):
            return
        logs, note = self._logs(principal, target, None, ())
        modes = {log: self._read_mode(log) for log in logs}
        logs = [log for log in logs if modes[log] != "off"]
        if logs:
            self._deliver(self._event(principal, action, target, result="ok", detail=None,
                                      logs=(logs, note), between=()),
                          sync=any(modes[log] == "sync" for log in logs))

    @property
    def queued(self) -> int:
        """Batched events not committed yet."""
        return self._writer.depth if self._writer is not None else 0

    def flush(self) -> None:
        """Commit every batched event of this process (before a query: callers see their
        own reads)."""
        if self._writer is not None:
            # Bounded: with the database down the query that follows fails anyway.
            self._writer.flush(timeout=FLUSH_TIMEOUT)

    def close(self) -> None:
        """Commit what is queued and stop the writer (a clean shutdown)."""
        if self._writer is not None:
            self._writer.close()

    def _deliver(self, event: tuple[list[str], dict[str, Any]], *, sync: bool) -> None:
        names, fields = event
        if not sync and self._writer is not None and self._writer.submit(PendingEvent(
                tuple((name, None if name == paths.SYSTEM_PARTITION
                       else self._incarnation(name)) for name in names), fields)):
            return
        # Synchronous class, or the writer is closed (shutting down): commit it now.
        self._db.run(lambda conn: _append(conn, names, fields))

    def _logs(self, principal: Principal, target: str | None, tenant: str | None,
              between: Sequence[str]) -> tuple[list[str], str | None]:
        log = tenant or tenant_for(principal, between[1] if between else target)
        return crossing(principal, log, target, between)

    def _event(self, principal: Principal, action: str, target: str | None, *, result: str,
               detail: str | None, logs: tuple[list[str], str | None],
               between: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
        """The logs an event goes to and its fields, taken now (time, request, client)."""
        names, note = logs
        touched = between or ([target] if target and target.startswith("/") else [])
        if AccessGate.is_system_admin(principal) and detail is None and any(
                paths.tenant_of(p) is not None for p in touched):
            detail = "admin bypass"
        if note is not None:
            detail = note if detail is None else f"{detail}; {note}"
        if via_signed_url.get():
            detail = "via signed URL" if detail is None else f"{detail}; via signed URL"
        return names, {"at": self._clock(), "user_id": principal.user_id,
                       "key_id": principal.key_id, "action": action, "target": target,
                       "result": result, "detail": detail,
                       "request_id": current_request_id.get(),
                       "client": _client()}

    # -- queries -------------------------------------------------------------------------

    def audit_query(self, principal: Principal, tenant_id: str, since: Any = None,
                    until: Any = None, user: str | None = None, action: str | None = None,
                    limit: int = 100, cursor: int | None = None) -> dict[str, Any]:
        """A page of events: ``{"events": [...], "next_cursor": int | None}``."""
        self._require_reader(principal, tenant_id)
        self.flush()
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidArgumentError("limit must be between 1 and 10000")
        with self._db.read() as conn:
            events = AuditRepository(conn).events(
                tenant_id, after_seq=int(cursor or 0), since=parse_timestamp(since),
                until=parse_timestamp(until), user_id=user, action=action, limit=limit)
        shown = [{**e.to_dict(), "time": iso_time(e.at)} for e in events]
        return {"events": shown, "next_cursor": events[-1].seq if len(events) == limit
                else None}

    def audit_export(self, principal: Principal, tenant_id: str) -> bytes:
        """The whole log of a tenant as JSON Lines."""
        lines: list[str] = []
        cursor = None
        while True:
            page = self.audit_query(principal, tenant_id, limit=10_000, cursor=cursor)
            lines.extend(json.dumps(e, sort_keys=True) for e in page["events"])
            cursor = page["next_cursor"]
            if cursor is None:
                return ("\n".join(lines) + ("\n" if lines else "")).encode()

    def audit_verify(self, principal: Principal, tenant_id: str) -> dict[str, Any]:
        """Check the chain: ``{"ok", "events", "problems"}``."""
        self._require_reader(principal, tenant_id)
        self.flush()
        with self._db.read() as conn:
            count, problems = AuditRepository(conn).verify(tenant_id)
        return {"tenant_id": tenant_id, "ok": not problems, "events": count,
                "problems": problems}

    def _require_reader(self, principal: Principal, tenant_id: str) -> None:
        # For anyone but the system administrator "_system" is just an invalid tenant id.
        if tenant_id != paths.SYSTEM_PARTITION or not AccessGate.is_system_admin(principal):
            paths.validate_tenant_id(tenant_id)
        if not self._may_read(principal, tenant_id):
            raise NexusPermissionError("permission denied: the audit log is for the system "
                                       f"administrator and administrators of {tenant_id}")
        if tenant_id != paths.SYSTEM_PARTITION:
            # Only a system administrator gets here for a tenant that does not exist (no
            # one else administers it), and an empty log would read as "nothing happened".
            with self._db.read() as conn:
                if TenantRepository(conn).get(tenant_id) is None:
                    raise NexusFileNotFoundError(f"no tenant {tenant_id!r}",
                                                 tenant_id=tenant_id)
