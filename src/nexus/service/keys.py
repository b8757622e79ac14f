"""API keys: creation, listing, revocation — and turning a presented key into a principal.

The credential decides who a request is: :meth:`KeyService.authenticate` is the only way
a :class:`~nexus.types.Principal` is made from outside the process. A revoked or expired
key is refused on its very next request in the process that revoked it, and in every
other process once the change event reaches it (:mod:`nexus.service.coherence`: a few
milliseconds; at most the cache's 1 s time-to-live when events cannot flow). Keys are
cached by key id only after a successful look-up, so unknown ids cost a read each and
never fill the cache; the secret is checked against the cached hash on every request.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from nexus import paths
from nexus.auth import generate_key, hash_secret, parse_key
from nexus.errors import (
    AuthenticationError,
    InvalidArgumentError,
    LimitExceededError,
    NexusFileNotFoundError,
    NexusPermissionError,
)
from nexus.service.access import AccessGate
from nexus.service.audit import AuditLog
from nexus.service.coherence import Coherence, CoherentCache
from nexus.service.quotas import QuotaLedger
from nexus.service.tenants import TenantService
from nexus.store import Database, TenantRepository, changes
from nexus.store.keys import KeyRecord, KeyRepository
from nexus.types import Principal, parse_timestamp

__all__ = ["MAX_LISTED_KEYS", "KeyService", "require_live_key", "validate_user_id"]

_USER_ID = re.compile(r"[A-Za-z0-9._@+=-]{1,255}")
_LAST_USED_EVERY = 60.0
#: The most keys one ``admin_list_keys`` answers (docs/http-api.md, "Limits").
MAX_LISTED_KEYS = 1_000


def validate_user_id(user_id: object) -> str:
    """A user id: 1–255 of ``A-Z a-z 0-9 . _ @ + = -`` (no ``/``, no ``:``)."""
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise InvalidArgumentError(
            f"user_id {user_id!r} must be 1-255 characters of A-Z a-z 0-9 . _ @ + = -")
    return user_id


def require_live_key(record: KeyRecord | None, now: float,
                     incarnation_of: Callable[[str], str | None]) -> None:
    """Refuse a key that is gone, revoked, expired or of a deleted tenant: what
    :meth:`KeyService.authenticate` checks after the secret, and what a stream in
    progress re-checks (:mod:`nexus.service.streams`)."""
    if record is None:
        raise AuthenticationError("invalid API key")
    if record.revoked_at is not None:
        raise AuthenticationError(f"API key {record.key_id} has been revoked")
    if record.expires_at is not None and record.expires_at <= now:
        raise AuthenticationError(f"API key {record.key_id} has expired")
    tenant = None if record.tenant_id == paths.SYSTEM_PARTITION else record.tenant_id
    if tenant is not None and (record.incarnation is None or
                               record.incarnation != incarnation_of(tenant)):
        # Issued to an earlier life of this tenant id: dead, whatever its row says.
        raise AuthenticationError(f"API key {record.key_id} belongs to a deleted tenant")


class KeyService:
    """Key administration (system administrator) and authentication (everyone)."""

    def __init__(self, *, db: Database, deployment_secret: bytes, quotas: QuotaLedger,
                 tenants: TenantService, audit: AuditLog, gate: AccessGate,
                 clock: Callable[[], float] = time.time, coherence: Coherence | None = None,
                 ttl: float = 1.0) -> None:
        self._gate = gate
        self._audit = audit
        self._db = db
        self._secret = deployment_secret
        self._quotas = quotas
        self._tenants = tenants
        self._clock = clock
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()
        self._coherence = coherence or Coherence()
        self._keys: CoherentCache[str, KeyRecord] = CoherentCache(self._coherence, ttl=ttl)
        self._coherence.subscribe(self._on_change, self._keys.clear)

    def _on_change(self, kind: str, key_id: str) -> None:
        if kind == changes.KEYS:
            self._keys.forget(key_id)

    def _load(self, key_id: str) -> KeyRecord | None:
        with self._db.read() as conn:
            return KeyRepository(conn).get(key_id)

    # -- authentication -----------------------------------------------------------------

    def authenticate(self, api_key: str | None) -> Principal:
        """The principal of a presented key; :class:`AuthenticationError` otherwise.

        The message is the same for unknown, malformed and wrong keys; revoked and
        expired keys say so, because their holder can do something about it.
        """
        if not api_key:
            raise AuthenticationError("an API key is required (Authorization: Bearer <key>)")
        parsed = parse_key(api_key)
        if parsed is None:
            raise AuthenticationError("invalid API key")
        record = self._keys.get(parsed.key_id, self._load)
        if record is None or not hmac.compare_digest(
                record.secret_hash, hash_secret(parsed.secret, self._secret)):
            raise AuthenticationError("invalid API key")
        now = self._clock()
        require_live_key(record, now, self._tenants.incarnation)
        self._touch(record.key_id, now)
        return _principal(record)

    def principal_of_key(self, key_id: str) -> Principal:
        """The principal of a live key named by its id (what a signed URL carries): the
        checks of :meth:`authenticate` but the secret's; :class:`AuthenticationError`
        for a key that does not exist, was revoked, expired, or outlived its tenant."""
        if not isinstance(key_id, str) or not 0 < len(key_id) <= 64:
            raise AuthenticationError("the key that signed this URL does not exist")
        record = self._keys.get(key_id, self._load)
        if record is None:
            raise AuthenticationError("the key that signed this URL does not exist")
        require_live_key(record, self._clock(), self._tenants.incarnation)
        return _principal(record)

    def _touch(self, key_id: str, now: float) -> None:
        # One write per key per minute at most: authentication stays a pure read.
        with self._lock:
            if now - self._last_used.get(key_id, 0.0) < _LAST_USED_EVERY:
                return
            self._last_used[key_id] = now
        self._db.run(lambda conn: KeyRepository(conn).update(key_id, last_used_at=now))

    # -- administration -----------------------------------------------------------------

    def admin_create_key(self, principal: Principal, user_id: str, name: str,
                         subject_type: str = "user", tenant_id: str | None = None,
                         is_admin: bool = False, expires_at: Any = None) -> dict[str, Any]:
        """Create a key for ``user_id`` of ``tenant_id`` (the user is created on its first
        key, within the tenant's ``max_users``). ``is_admin=True`` makes a system
        administrator key, which has no tenant. A tenant's administrator may create keys
        for users of its own tenant. The returned ``api_key`` is shown only here."""
        if is_admin or tenant_id is None:
            self._gate.require_system_admin(principal, "manages API keys")
        else:
            self._require_tenant_admin(principal, tenant_id)
        validate_user_id(user_id)
        if not isinstance(name, str) or not name or len(name) > 255:
            raise InvalidArgumentError("name must be a non-empty string of at most 255 chars")
        if subject_type != "user":
            raise InvalidArgumentError(f"subject_type {subject_type!r} is not supported; "
                                       "use 'user'")
        if is_admin and tenant_id is not None:
            raise InvalidArgumentError(
                "is_admin=True creates a system administrator key, which belongs to no "
                "tenant; for a tenant administrator grant 'owner' on /tenants/<id> instead")
        if not is_admin and tenant_id is None:
            raise InvalidArgumentError("tenant_id is required for a non-admin key")
        tenant = paths.SYSTEM_PARTITION if is_admin else paths.validate_tenant_id(tenant_id)
        expiry = parse_timestamp(expires_at)
        now = self._clock()
        if expiry is not None and expiry <= now:
            raise InvalidArgumentError("expires_at is in the past")
        text, parsed = generate_key()

        def create(conn: Connection) -> KeyRecord:
            incarnation = None if is_admin else TenantRepository(conn).incarnation(tenant)
            if not is_admin and incarnation is None:
                raise NexusFileNotFoundError(f"tenant {tenant!r} does not exist; create "
                                             f"/tenants/{tenant} first")
            record = KeyRecord(parsed.key_id, tenant, user_id, name, subject_type,
                               bool(is_admin), hash_secret(parsed.secret, self._secret), now,
                               expiry, None, None, incarnation)
            keys = KeyRepository(conn)
            if keys.add_user(tenant, user_id, now) and not is_admin:
                self._quotas.charge(conn, tenant, users=1)
            keys.insert(record)
            self._audit.record(conn, principal, "key.create", f"key:{record.key_id}",
                               detail=f"user={user_id}", tenant=tenant)
            return record

        return {"api_key": text, **_public(self._db.run(create))}

    def admin_list_keys(self, principal: Principal, tenant_id: str | None = None,
                        user_id: str | None = None) -> list[dict[str, Any]]:
        """Keys (never their secrets or hashes), optionally of one tenant or user. A
        tenant's administrator lists its own tenant's keys."""
        if tenant_id is None:
            self._gate.require_system_admin(principal, "manages API keys")
        else:
            self._require_tenant_admin(principal, tenant_id)
        with self._db.read() as conn:
            # One more than the cap is read, to tell "exactly the cap" from "more".
            records = KeyRepository(conn).list(tenant_id, user_id, limit=MAX_LISTED_KEYS + 1)
        if len(records) > MAX_LISTED_KEYS:
            raise LimitExceededError(
                f"more than {MAX_LISTED_KEYS} keys match; list one user's keys (user_id) "
                "or revoke unused ones", limit=MAX_LISTED_KEYS, param="user_id")
        return [_public(r) for r in records]

    def admin_get_key(self, principal: Principal, key_id: str) -> dict[str, Any]:
        """One key's metadata."""
        return _public(self._get_managed(principal, key_id))

    def admin_update_key(self, principal: Principal, key_id: str, name: str | None = None,
                         expires_at: Any = None) -> dict[str, Any]:
        """Rename a key or change its expiry."""
        self._gate.require_system_admin(principal, "manages API keys")
        values: dict[str, Any] = {}
        if name is not None:
            if not isinstance(name, str) or not name or len(name) > 255:
                raise InvalidArgumentError("name must be a non-empty string")
            values["name"] = name
        if expires_at is not None:
            values["expires_at"] = parse_timestamp(expires_at)
        tenant = self._get(key_id).tenant_id
        if values:
            def update(conn: Connection) -> None:
                KeyRepository(conn).update(key_id, **values)
                self._audit.record(conn, principal, "key.update", f"key:{key_id}",
                                   detail=",".join(sorted(values)), tenant=tenant)

            self._db.run(update)
            self._keys.forget(key_id)
        return _public(self._get(key_id))

    def admin_revoke_key(self, principal: Principal, key_id: str) -> dict[str, Any]:
        """Revoke a key; its next request is refused."""
        record = self._get_managed(principal, key_id)
        if record.revoked_at is None:
            def revoke(conn: Connection) -> None:
                KeyRepository(conn).update(key_id, revoked_at=self._clock())
                self._audit.record(conn, principal, "key.revoke", f"key:{record.key_id}",
                                   tenant=record.tenant_id)

            self._db.run(revoke)
            self._keys.forget(key_id)
        return _public(self._get(key_id))

    def bootstrap_admin_key(self) -> str | None:
        """Create the first system-administrator key if none exists; its text, else None."""
        with self._db.read() as conn:
            if KeyRepository(conn).has_admin():
                return None
        created = self.admin_create_key(Principal.local_admin(), "admin", "bootstrap admin",
                                        is_admin=True)
        return str(created["api_key"])

    def _require_tenant_admin(self, principal: Principal, tenant_id: str) -> None:
        self._gate.require_tenant_admin(
            principal, tenant_id, "permission denied: only the system administrator or "
            f"an administrator of tenant {tenant_id} manages its keys")

    def _get_managed(self, principal: Principal, key_id: str) -> KeyRecord:
        """A key the principal may manage; others look absent-or-forbidden alike."""
        if self._gate.is_system_admin(principal):
            return self._get(key_id)
        with self._db.read() as conn:
            record = KeyRepository(conn).get(str(key_id))
        if record is None or not self._gate.may_manage_key(principal, record.tenant_id):
            raise NexusPermissionError("permission denied: not a key of your tenant")
        return record

    def _get(self, key_id: str) -> KeyRecord:
        with self._db.read() as conn:
            record = KeyRepository(conn).get(str(key_id))
        if record is None:
            raise NexusFileNotFoundError(f"no API key {key_id!r}")
        return record


def _principal(record: KeyRecord) -> Principal:
    tenant = None if record.tenant_id == paths.SYSTEM_PARTITION else record.tenant_id
    return Principal(user_id=record.user_id, tenant_id=tenant, is_admin=record.is_admin,
                     key_id=record.key_id, incarnation=record.incarnation)


def _public(record: KeyRecord) -> dict[str, Any]:
    out = record.public()
    if out["tenant_id"] == paths.SYSTEM_PARTITION:
        out["tenant_id"] = None
    return out
