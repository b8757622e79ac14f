"""Cross-tenant shares: time-limited grants from one tenant's path to another tenant's members.

A share is a relation tuple ``tenant:<target>#member <permission> file:<path>`` in the
source tenant's store (so the ordinary permission check resolves it, and only for the
target's own members — never through ``user:*``), plus a record that can be listed and
revoked. Revocation and expiry take effect on the next request; a share out of a
suspended tenant stops resolving; a share never counts against the target's quota.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from nexus import paths
from nexus.authz import RelationTuple
from nexus.errors import (
    InvalidArgumentError,
    LimitExceededError,
    NexusFileNotFoundError,
    NexusPermissionError,
)
from nexus.service import incarnations
from nexus.service.access import AccessGate, Action
from nexus.service.audit import AuditLog
from nexus.service.permissions import RevisionTracker
from nexus.store import Database, FileRepository, TenantRepository
from nexus.store.shares import ShareRecord, ShareRepository
from nexus.store.tuples import TupleRepository
from nexus.types import Principal, iso_time, parse_timestamp

__all__ = ["MAX_LISTED_SHARES", "SHARE_PERMISSIONS", "ShareService", "record_share"]

SHARE_PERMISSIONS = ("can_read", "can_write")
#: The most share records one ``list_shares`` answers (docs/http-api.md, "Limits").
MAX_LISTED_SHARES = 1_000


def record_share(conn: Any, *, source: str, target: str, path: str, permission: str,
                 tuple_id: str, now: float, expires_at: float | None,
                 created_by: str | None, target_incarnation: str | None) -> ShareRecord:
    """Store the share record of a cross-tenant tuple (inside the caller's transaction),
    bound to the target's current incarnation like the tuple it stands for."""
    if target_incarnation is None:
        raise NexusFileNotFoundError(f"no tenant {target!r}", tenant_id=target)
    record = ShareRecord(source, uuid.uuid4().hex, target, path, permission, tuple_id, now,
                         expires_at, None, created_by, target_incarnation)
    ShareRepository(conn).insert(record)
    return record


def share_dict(record: ShareRecord, now: float) -> dict[str, Any]:
    """The API's view of a share (``share_id`` is ``<source>:<id>``)."""
    expired = record.expires_at is not None and record.expires_at <= now
    status = "revoked" if record.revoked_at else ("expired" if expired else "active")
    return {"share_id": f"{record.source_tenant}:{record.share_id}",
            "source_tenant": record.source_tenant, "target_tenant": record.target_tenant,
            "path": record.path, "permission": record.permission,
            "created_at": iso_time(record.created_at),
            "expires_at": iso_time(record.expires_at) if record.expires_at else None,
            "status": status, "created_by": record.created_by}


class ShareService:
    """create / list / revoke shares."""

    def __init__(self, *, db: Database, gate: AccessGate,
                 revisions: RevisionTracker, audit: AuditLog,
                 clock: Callable[[], float] = time.time) -> None:
        self._audit = audit
        self._db = db
        self._gate = gate
        self._revisions = revisions
        self._clock = clock

    def create_share(self, principal: Principal, path: str, target_tenant_id: str,
                     permission: str = "can_read", expires_in_days: float | None = None,
                     expires_at: Any = None) -> dict[str, Any]:
        """Let every member of ``target_tenant_id`` have ``permission`` on ``path``
        (and below it) until the share expires or is revoked. Owners of ``path`` and the
        system administrator may share."""
        path = paths.normalize(path)
        source = paths.tenant_of(path)
        if source is None:
            raise InvalidArgumentError("only paths under /tenants/<id> can be shared")
        paths.validate_tenant_id(target_tenant_id)
        if target_tenant_id == source:
            raise InvalidArgumentError("a tenant cannot share with itself; grant instead")
        if permission not in SHARE_PERMISSIONS:
            raise InvalidArgumentError(f"permission must be one of {list(SHARE_PERMISSIONS)}")
        self._gate.require(principal, Action.OWN, path)
        now = self._clock()
        expiry = parse_timestamp(expires_at)
        if expires_in_days is not None:
            if not isinstance(expires_in_days, int | float) or expires_in_days <= 0:
                raise InvalidArgumentError("expires_in_days must be a positive number")
            expiry = now + float(expires_in_days) * 86400
        if expiry is not None and expiry <= now:
            raise InvalidArgumentError("the share would already be expired")
        def _work(conn: Connection) -> Any:
            # A share of nothing would wait for whatever is later written there.
            if FileRepository(conn).get(source, path) is None:
                raise NexusFileNotFoundError(f"no such file or directory: {path}", path=path)
            target_incarnation = TenantRepository(conn).incarnation(target_tenant_id)
            if target_incarnation is None:
                raise NexusFileNotFoundError(f"no tenant {target_tenant_id!r}")
            grant = RelationTuple("file", path, permission, "tenant",
                                  incarnations.ref(target_tenant_id, target_incarnation),
                                  "member", expiry)
            tuples = TupleRepository(conn)
            stored = tuples.write(source, grant, now=now, created_by=principal.user_id)
            shares = ShareRepository(conn)
            same = [s for s in shares.outgoing(source)
                    if s.tuple_id == stored.tuple_id and s.revoked_at is None]
            if same:
                # One grant, one share: sharing again renews the existing share.
                shares.set_expiry(source, same[0].share_id, expiry)
                record = shares.get(source, same[0].share_id) or same[0]
            else:
                record = record_share(conn, source=source, target=target_tenant_id,
                                      path=path, permission=permission,
                                      tuple_id=stored.tuple_id, now=now, expires_at=expiry,
                                      created_by=principal.user_id,
                                      target_incarnation=target_incarnation)
            revision = tuples.bump_revision(source)
            self._audit.record(conn, principal, "share.create", path,
                               detail=f"{permission} to {target_tenant_id}")
            return revision, record

        revision, record = self._db.run(_work)
        self._revisions.advanced(source, revision)
        return share_dict(record, now)

    def list_shares(self, principal: Principal, tenant_id: str, direction: str = "outgoing",
                    include_expired: bool = False) -> list[dict[str, Any]]:
        """Shares out of (``outgoing``) or into (``incoming``) a tenant; active ones unless
        ``include_expired`` (which also shows revoked ones)."""
        if direction not in ("outgoing", "incoming"):
            raise InvalidArgumentError("direction must be 'outgoing' or 'incoming'")
        if not self._gate.is_tenant_admin(principal, paths.validate_tenant_id(tenant_id)):
            raise NexusPermissionError(f"permission denied: not an administrator of "
                                       f"tenant {tenant_id}")
        now = self._clock()
        most = MAX_LISTED_SHARES + 1  # one more than the cap: "exactly" is not "more"
        with self._db.read() as conn:
            repo = ShareRepository(conn)
            if direction == "outgoing":
                records = repo.outgoing(tenant_id, limit=most)
            else:
                incarnation = TenantRepository(conn).incarnation(tenant_id)
                records = [] if incarnation is None \
                    else repo.incoming(tenant_id, incarnation=incarnation, limit=most)
        if len(records) > MAX_LISTED_SHARES:
            raise LimitExceededError(
                f"tenant {tenant_id} has more than {MAX_LISTED_SHARES} {direction} share "
                "records; revoke unused ones", limit=MAX_LISTED_SHARES)
        shown = [share_dict(r, now) for r in records]
        return shown if include_expired else [s for s in shown if s["status"] == "active"]

    def revoke_share(self, principal: Principal, share_id: str) -> dict[str, Any]:
        """End a share now; its next use is refused."""
        source, _, raw_id = str(share_id).partition(":")
        paths.validate_tenant_id(source)
        denied = NexusPermissionError(f"permission denied: revoke share {share_id}")
        # Decide before looking: whether a share id exists is itself the source tenant's.
        if not self._gate.may_act_in(principal, source):
            raise denied
        with self._db.read() as conn:
            record = ShareRepository(conn).get(source, raw_id)
        if record is None:
            if self._gate.is_tenant_admin(principal, source):
                raise NexusFileNotFoundError(f"no share {share_id!r}")
            raise denied
        if not self._gate.allowed(principal, Action.OWN, record.path):
            raise denied
        now = self._clock()
        def _work(conn: Connection) -> Any:
            tuples = TupleRepository(conn)
            tuples.delete(source, record.tuple_id)
            ShareRepository(conn).revoke(source, raw_id, now)
            revision = tuples.bump_revision(source)
            self._audit.record(conn, principal, "share.revoke", record.path,
                               detail=f"share {share_id}")
            return revision

        revision = self._db.run(_work)
        self._revisions.advanced(source, revision)
        with self._db.read() as conn:
            revoked = ShareRepository(conn).get(source, raw_id)
        assert revoked is not None
        return share_dict(revoked, now)
