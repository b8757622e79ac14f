"""The audit log: who did what to which path or object, when, from where, with what result.

Changes are recorded in the same transaction as the change (:meth:`AuditLog.record`), so
an event exists exactly when its change does. Denials and reads have nothing to be atomic
with and are recorded in a transaction of their own (:meth:`AuditLog.record_now`); reads
are not recorded for tenants whose ``settings.audit_reads`` is ``false``. Each tenant's
log is a hash chain with a gapless sequence (``audit_verify`` detects any edited or
missing event); events outside any tenant go to the system log (``_system``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from nexus import paths
from nexus.context import client_address, current_request_id
from nexus.errors import InvalidArgumentError, NexusPermissionError
from nexus.store import Database
from nexus.store.audit import AuditRepository
from nexus.types import Principal, iso_time, parse_timestamp

__all__ = ["AuditLog"]


def tenant_for(principal: Principal, target: str | None) -> str:
    """The log an event belongs to: the target path's tenant, else the actor's, else system."""
    if target and target.startswith("/"):
        tenant = paths.tenant_of(target)
        if tenant is not None:
            return tenant
    return principal.tenant_id or paths.SYSTEM_PARTITION


class AuditLog:
    """Appends and reads audit events."""

    def __init__(self, *, db: Database, clock: Callable[[], float] = time.time,
                 reads_enabled: Callable[[str], bool] | None = None,
                 is_tenant_admin: Callable[[Principal, str], bool] | None = None) -> None:
        self._db = db
        self._clock = clock
        self._reads_enabled = reads_enabled or (lambda _tenant: True)
        self._is_tenant_admin = is_tenant_admin or (lambda p, _t: p.is_admin)

    def bind(self, *, reads_enabled: Callable[[str], bool],
             is_tenant_admin: Callable[[Principal, str], bool]) -> None:
        """Late wiring of the two tenancy questions (the tenant service is built after)."""
        self._reads_enabled = reads_enabled
        self._is_tenant_admin = is_tenant_admin

    def record(self, conn: Connection, principal: Principal, action: str,
               target: str | None, *, result: str = "ok", detail: str | None = None,
               tenant: str | None = None) -> None:
        """Append an event inside the caller's transaction."""
        if principal.is_admin and detail is None and tenant_for(principal, target) \
                != paths.SYSTEM_PARTITION:
            detail = "admin bypass"
        AuditRepository(conn).append(
            tenant or tenant_for(principal, target), at=self._clock(),
            user_id=principal.user_id, key_id=principal.key_id, action=action, target=target,
            result=result, detail=detail, request_id=current_request_id.get(),
            client=client_address.get())

    def record_now(self, principal: Principal, action: str, target: str | None, *,
                   result: str = "ok", detail: str | None = None) -> None:
        """Append an event in its own transaction (denials, reads)."""
        with self._db.write() as conn:
            self.record(conn, principal, action, target, result=result, detail=detail)

    def record_read(self, principal: Principal, action: str, target: str) -> None:
        """A read, unless the target tenant switched read auditing off. Reads by the
        in-process operator (the embedded engine opened without a key: no credential,
        no request) are not recorded; every keyed principal's are."""
        if principal.key_id is None and principal.is_admin:
            return
        if self._reads_enabled(tenant_for(principal, target)):
            self.record_now(principal, action, target)

    # -- queries -------------------------------------------------------------------------

    def audit_query(self, principal: Principal, tenant_id: str, since: Any = None,
                    until: Any = None, user: str | None = None, action: str | None = None,
                    limit: int = 100, cursor: int | None = None) -> dict[str, Any]:
        """A page of events: ``{"events": [...], "next_cursor": int | None}``."""
        self._require_reader(principal, tenant_id)
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
        with self._db.read() as conn:
            count, problems = AuditRepository(conn).verify(tenant_id)
        return {"tenant_id": tenant_id, "ok": not problems, "events": count,
                "problems": problems}

    def _require_reader(self, principal: Principal, tenant_id: str) -> None:
        if tenant_id == paths.SYSTEM_PARTITION and principal.is_admin:
            return
        paths.validate_tenant_id(tenant_id)
        if not self._is_tenant_admin(principal, tenant_id):
            raise NexusPermissionError("permission denied: the audit log is for the system "
                                       f"administrator and administrators of {tenant_id}")
