"""Share records (the grants they stand for live in ``rebac_tuples``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from nexus.store.schema import shares

__all__ = ["ShareRecord", "ShareRepository"]

_S = shares.c


@dataclass(frozen=True, slots=True)
class ShareRecord:
    """One share from ``source_tenant`` to ``target_tenant``'s members."""

    source_tenant: str
    share_id: str
    target_tenant: str
    path: str
    permission: str
    tuple_id: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    created_by: str | None
    #: The target tenant's incarnation when the share was made: the share is dead for any
    #: other life of that name.
    target_incarnation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _record(row: Any) -> ShareRecord:
    return ShareRecord(row.source_tenant, row.share_id, row.target_tenant, row.path,
                       row.permission, row.tuple_id, row.created_at, row.expires_at,
                       row.revoked_at, row.created_by, row.target_incarnation)


class ShareRepository:
    """SQL access to ``shares`` on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, record: ShareRecord) -> None:
        self.conn.execute(shares.insert().values(**record.to_dict()))

    def get(self, source_tenant: str, share_id: str) -> ShareRecord | None:
        row = self.conn.execute(select(shares).where(
            _S.source_tenant == source_tenant, _S.share_id == share_id)).first()
        return _record(row) if row else None

    def outgoing(self, source_tenant: str, *, limit: int | None = None) -> list[ShareRecord]:
        query = select(shares).where(_S.source_tenant == source_tenant)
        return [_record(r) for r in self.conn.execute(query.order_by(_S.created_at)
                                                      .limit(limit))]

    def incoming(self, target_tenant: str, *, incarnation: str | None = None,
                 limit: int | None = None) -> list[ShareRecord]:
        """Shares into ``target_tenant``; with ``incarnation``, only those made to that
        life of it (every other one is dead)."""
        query = select(shares).where(_S.target_tenant == target_tenant)
        if incarnation is not None:
            query = query.where(_S.target_incarnation == incarnation)
        return [_record(r) for r in self.conn.execute(query.order_by(_S.created_at)
                                                      .limit(limit))]

    def revoke(self, source_tenant: str, share_id: str, now: float) -> None:
        self.conn.execute(update(shares).where(
            _S.source_tenant == source_tenant, _S.share_id == share_id).values(revoked_at=now))

    def set_expiry(self, source_tenant: str, share_id: str, expires_at: float | None) -> None:
        self.conn.execute(update(shares).where(
            _S.source_tenant == source_tenant, _S.share_id == share_id)
            .values(expires_at=expires_at))

    def revoke_below(self, source_tenant: str, root: str, now: float) -> int:
        """End the shares of ``root`` and of everything below it (the files are gone)."""
        return self.conn.execute(update(shares).where(
            _S.source_tenant == source_tenant, _S.revoked_at.is_(None),
            or_(_S.path == root, and_(_S.path > root + "/", _S.path < root + "0")))
            .values(revoked_at=now)).rowcount

    def move_below(self, source_tenant: str, src: str, dst: str) -> int:
        """Follow a rename: shares of ``src`` and below now name ``dst``."""
        return self.conn.execute(update(shares).where(
            _S.source_tenant == source_tenant,
            or_(_S.path == src, and_(_S.path > src + "/", _S.path < src + "0")))
            .values(path=dst + func.substr(_S.path, len(src) + 1))).rowcount

    def delete_tenant(self, tenant_id: str) -> None:
        """Every share from or to a tenant (tenant deletion)."""
        self.conn.execute(delete(shares).where(
            or_(_S.source_tenant == tenant_id, _S.target_tenant == tenant_id)))
