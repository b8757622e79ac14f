"""The relation-tuple repository.

Tuples live in their object's tenant partition. Every method takes ``tenant_id`` first.
Expired tuples are never returned by the read methods: expiry is applied in the query
against the caller's clock, so a tuple stops granting at its ``expires_at`` instant.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nexus.store import changes
from nexus.store.schema import authz_models, authz_revisions, rebac_tuples

__all__ = ["ModelRepository", "StoredTuple", "TupleRepository", "TupleRow"]

#: ``(object_type, object_id, relation, subject_type, subject_id, subject_relation | None,
#: expires_at)`` — the shape the permission engine's ``RelationTuple`` is built from.
TupleRow = tuple[str, str, str, str, str, str | None, float | None]

_T = rebac_tuples.c
_READ_COLUMNS = (_T.object_type, _T.object_id, _T.relation, _T.subject_type, _T.subject_id,
                 _T.subject_relation, _T.expires_at)


@dataclass(frozen=True, slots=True)
class StoredTuple:
    """A tuple as stored, with its id and bookkeeping."""

    tenant_id: str
    tuple_id: str
    object_type: str
    object_id: str
    relation: str
    subject_type: str
    subject_id: str
    subject_relation: str | None
    expires_at: float | None
    created_at: float
    created_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _row(row: Any) -> TupleRow:
    return (row[0], row[1], row[2], row[3], row[4], row[5] or None, row[6])


def _stored(row: Any) -> StoredTuple:
    return StoredTuple(row.tenant_id, row.tuple_id, row.object_type, row.object_id, row.relation,
                       row.subject_type, row.subject_id, row.subject_relation or None,
                       row.expires_at, row.created_at, row.created_by)


def _live(now: float) -> Any:
    return or_(_T.expires_at.is_(None), _T.expires_at > now)


# The permission check's one query, built once (only parameters change per call).
_READ_OBJECTS = select(*_READ_COLUMNS).where(
    _T.tenant_id == bindparam("tenant_id"), _T.object_type == bindparam("object_type"),
    _T.object_id.in_(bindparam("object_ids", expanding=True)),
    or_(_T.expires_at.is_(None), _T.expires_at > bindparam("now")))


class TupleRepository:
    """SQL access to ``rebac_tuples`` and ``authz_revisions`` on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    def write(self, tenant_id: str, t: Any, *, now: float,
              created_by: str | None) -> StoredTuple:
        """Store ``t`` (or refresh the expiry of an identical tuple); returns the row."""
        existing = self.find(tenant_id, t)
        if existing is not None:
            self.conn.execute(update(rebac_tuples)
                              .where(_T.tenant_id == tenant_id, _T.tuple_id == existing.tuple_id)
                              .values(expires_at=t.expires_at))
            return StoredTuple(**{**existing.to_dict(), "expires_at": t.expires_at})
        stored = StoredTuple(tenant_id, uuid.uuid4().hex, t.object_type, t.object_id, t.relation,
                             t.subject_type, t.subject_id, t.subject_relation, t.expires_at, now,
                             created_by)
        values = stored.to_dict()
        values["subject_relation"] = t.subject_relation or ""
        self.conn.execute(rebac_tuples.insert().values(**values))
        return stored

    def find(self, tenant_id: str, t: Any) -> StoredTuple | None:
        """The stored tuple with the same key as ``t`` (expired or not)."""
        row = self.conn.execute(select(rebac_tuples).where(
            _T.tenant_id == tenant_id, _T.object_type == t.object_type,
            _T.object_id == t.object_id, _T.relation == t.relation,
            _T.subject_type == t.subject_type, _T.subject_id == t.subject_id,
            _T.subject_relation == (t.subject_relation or "")).limit(1)).first()
        return _stored(row) if row else None

    def get(self, tenant_id: str, tuple_id: str) -> StoredTuple | None:
        row = self.conn.execute(select(rebac_tuples).where(
            _T.tenant_id == tenant_id, _T.tuple_id == tuple_id)).first()
        return _stored(row) if row else None

    def delete(self, tenant_id: str, tuple_id: str) -> bool:
        result = self.conn.execute(delete(rebac_tuples).where(
            _T.tenant_id == tenant_id, _T.tuple_id == tuple_id))
        return result.rowcount == 1

    def delete_partition(self, tenant_id: str) -> int:
        """Every tuple of a tenant (tenant deletion)."""
        return self.conn.execute(delete(rebac_tuples).where(_T.tenant_id == tenant_id)).rowcount

    def delete_references(self, incarnation: str) -> list[str]:
        """Delete, in every tenant's store, the tuples naming one tenant incarnation
        (``<tenant>~<token>`` as subject or object, or ``<tenant>~<token>/<user>``);
        the tenants whose stores changed. The one query that spans partitions, run only
        when a tenant is deleted (a scan: the references are already dead, this is their
        removal)."""
        below = and_(_T.subject_id > incarnation + "/", _T.subject_id < incarnation + "0")
        named = or_(_T.subject_id == incarnation, below,
                    and_(_T.object_type == "tenant", _T.object_id == incarnation))
        rows = self.conn.execute(delete(rebac_tuples).where(named)
                                 .returning(_T.tenant_id)).all()
        return sorted({row[0] for row in rows})

    def delete_objects_below(self, tenant_id: str, object_type: str, root: str) -> int:
        """Tuples on ``root`` and every object id below it (a removed directory tree)."""
        below = and_(_T.object_id > root + "/", _T.object_id < root + "0")
        return self.conn.execute(delete(rebac_tuples).where(
            _T.tenant_id == tenant_id, _T.object_type == object_type,
            or_(_T.object_id == root, below))).rowcount

    def move_objects(self, tenant_id: str, object_type: str, src: str, dst: str) -> int:
        """Re-point tuples on ``src`` and below to ``dst`` (a renamed file or directory)."""
        n = len(src)
        below = and_(_T.object_id > src + "/", _T.object_id < src + "0")
        return self.conn.execute(
            update(rebac_tuples)
            .where(_T.tenant_id == tenant_id, _T.object_type == object_type,
                   or_(_T.object_id == src, below))
            .values(object_id=dst + func.substr(_T.object_id, n + 1))).rowcount

    def read(self, tenant_id: str, object_type: str, object_id: str, relation: str,
             now: float) -> list[TupleRow]:
        rows = self.conn.execute(select(*_READ_COLUMNS).where(
            _T.tenant_id == tenant_id, _T.object_type == object_type, _T.object_id == object_id,
            _T.relation == relation, _live(now)))
        return [_row(r) for r in rows]

    def read_objects(self, tenant_id: str, object_type: str, object_ids: Sequence[str],
                     now: float) -> list[TupleRow]:
        """Every live tuple on any of ``object_ids`` (one query; used to prefetch)."""
        out: list[TupleRow] = []
        for start in range(0, len(object_ids), 500):
            chunk = list(object_ids[start:start + 500])
            rows = self.conn.execute(_READ_OBJECTS, {"tenant_id": tenant_id,
                                                     "object_type": object_type,
                                                     "object_ids": chunk, "now": now})
            out.extend(_row(r) for r in rows)
        return out

    def read_reverse(self, tenant_id: str, subject_type: str, subject_id: str,
                     subject_relation: str | None, object_type: str, relation: str,
                     now: float) -> list[TupleRow]:
        rows = self.conn.execute(select(*_READ_COLUMNS).where(
            _T.tenant_id == tenant_id, _T.subject_type == subject_type,
            _T.subject_id == subject_id, _T.subject_relation == (subject_relation or ""),
            _T.object_type == object_type, _T.relation == relation, _live(now)))
        return [_row(r) for r in rows]

    def list(self, tenant_id: str, *, subject: tuple[str, str] | None = None,
             relation: str | None = None, obj: tuple[str, str] | None = None,
             include_expired: bool = False, now: float, after: str | None = None,
             limit: int = 1000) -> list[StoredTuple]:
        """Stored tuples matching the filters, by tuple id."""
        query = select(rebac_tuples).where(_T.tenant_id == tenant_id)
        if subject is not None:
            query = query.where(_T.subject_type == subject[0], _T.subject_id == subject[1])
        if relation is not None:
            query = query.where(_T.relation == relation)
        if obj is not None:
            query = query.where(_T.object_type == obj[0], _T.object_id == obj[1])
        if not include_expired:
            query = query.where(_live(now))
        if after is not None:
            query = query.where(_T.tuple_id > after)
        query = query.order_by(_T.tuple_id).limit(limit)
        return [_stored(r) for r in self.conn.execute(query)]

    def bump_revision(self, tenant_id: str) -> int:
        """Advance the tenant's tuple revision (inside the writing transaction)."""
        stmt = self._insert(authz_revisions).values(tenant_id=tenant_id, revision=1)
        stmt = stmt.on_conflict_do_update(index_elements=["tenant_id"],
                                          set_={"revision": authz_revisions.c.revision + 1})
        self.conn.execute(stmt)
        changes.publish(self.conn, changes.TUPLES, tenant_id)
        return self.revision(tenant_id)

    def revision(self, tenant_id: str) -> int:
        row = self.conn.execute(select(authz_revisions.c.revision).where(
            authz_revisions.c.tenant_id == tenant_id)).first()
        return int(row[0]) if row else 0

    def delete_revision(self, tenant_id: str) -> None:
        self.conn.execute(delete(authz_revisions).where(authz_revisions.c.tenant_id == tenant_id))
        changes.publish(self.conn, changes.TUPLES, tenant_id)


class ModelRepository:
    """Per-tenant authorization models (OpenFGA DSL). The newest row is in force."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def latest(self, tenant_id: str) -> tuple[str, str] | None:
        """``(model_id, dsl)`` of the tenant's model in force, or ``None`` (the default)."""
        row = self.conn.execute(
            select(authz_models.c.model_id, authz_models.c.dsl)
            .where(authz_models.c.tenant_id == tenant_id)
            .order_by(authz_models.c.created_at.desc(), authz_models.c.model_id.desc())
            .limit(1)).first()
        return (row[0], row[1]) if row else None

    def add(self, tenant_id: str, model_id: str, dsl: str, now: float) -> None:
        self.conn.execute(authz_models.insert().values(tenant_id=tenant_id, model_id=model_id,
                                                       dsl=dsl, created_at=now))

    def delete_tenant(self, tenant_id: str) -> None:
        self.conn.execute(delete(authz_models).where(authz_models.c.tenant_id == tenant_id))
