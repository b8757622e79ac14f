"""Users and API keys. Users are per tenant; keys are found by their visible id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nexus.store import changes
from nexus.store.schema import api_keys, users

__all__ = ["KeyRecord", "KeyRepository"]

_K = api_keys.c


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One stored key (the secret itself is never stored)."""

    key_id: str
    tenant_id: str
    user_id: str
    name: str
    subject_type: str
    is_admin: bool
    secret_hash: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None
    #: The tenant's incarnation the key was issued in (``None`` for administrator keys).
    incarnation: str | None = None

    def public(self) -> dict[str, Any]:
        """Everything but the hash and the incarnation token."""
        return {name: getattr(self, name) for name in self.__slots__
                if name not in ("secret_hash", "incarnation")}


def _record(row: Any) -> KeyRecord:
    return KeyRecord(row.key_id, row.tenant_id, row.user_id, row.name, row.subject_type,
                     bool(row.is_admin), row.secret_hash, row.created_at, row.expires_at,
                     row.revoked_at, row.last_used_at, row.incarnation)


class KeyRepository:
    """SQL access to ``users`` and ``api_keys`` on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_user(self, tenant_id: str, user_id: str, now: float) -> bool:
        """Create the user unless it exists; True if this call created it."""
        module = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        stmt = module.insert(users).values(tenant_id=tenant_id, user_id=user_id, created_at=now)
        # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT.
        inserted = stmt.on_conflict_do_nothing().returning(users.c.user_id)
        return self.conn.execute(inserted).first() is not None

    def user_exists(self, tenant_id: str, user_id: str) -> bool:
        return self.conn.execute(select(users.c.user_id).where(
            users.c.tenant_id == tenant_id, users.c.user_id == user_id)).first() is not None

    def users(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every user of a tenant: ``{"user_id", "created_at"}``."""
        query = select(users.c.user_id, users.c.created_at).where(
            users.c.tenant_id == tenant_id).order_by(users.c.user_id)
        return [{"user_id": r[0], "created_at": r[1]} for r in self.conn.execute(query)]

    def count_users(self, tenant_id: str) -> int:
        return int(self.conn.execute(select(func.count()).select_from(users).where(
            users.c.tenant_id == tenant_id)).scalar_one())

    def insert(self, record: KeyRecord) -> None:
        self.conn.execute(api_keys.insert().values(
            {name: getattr(record, name) for name in record.__slots__}))

    def get(self, key_id: str) -> KeyRecord | None:
        row = self.conn.execute(select(api_keys).where(_K.key_id == key_id)).first()
        return _record(row) if row else None

    def list(self, tenant_id: str | None = None, user_id: str | None = None, *,
             limit: int | None = None) -> list[KeyRecord]:
        query = select(api_keys)
        if tenant_id is not None:
            query = query.where(_K.tenant_id == tenant_id)
        if user_id is not None:
            query = query.where(_K.user_id == user_id)
        query = query.order_by(_K.created_at, _K.key_id).limit(limit)
        return [_record(r) for r in self.conn.execute(query)]

    def update(self, key_id: str, **values: Any) -> bool:
        result = self.conn.execute(update(api_keys).where(_K.key_id == key_id).values(**values))
        if set(values) - {"last_used_at"}:
            # Processes cache keys (KeyService): tell them, in this transaction.
            changes.publish(self.conn, changes.KEYS, key_id)
        return result.rowcount == 1

    def has_admin(self) -> bool:
        """True if any unrevoked system-administrator key exists."""
        return self.conn.execute(select(_K.key_id).where(
            _K.is_admin.is_(True), _K.revoked_at.is_(None)).limit(1)).first() is not None

    def delete_tenant(self, tenant_id: str) -> None:
        """Every key and user of a tenant (tenant deletion)."""
        self.conn.execute(delete(api_keys).where(_K.tenant_id == tenant_id))
        self.conn.execute(delete(users).where(users.c.tenant_id == tenant_id))
