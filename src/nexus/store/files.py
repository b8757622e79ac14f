"""The file-metadata repository: every SQL statement about files and directories.

Each method takes the partition (``tenant_id``, see :func:`nexus.paths.partition_of`)
as its first argument; there is no query that is not confined to one partition. Methods
run on the connection of the caller's unit of work and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nexus.store.schema import files, tenants

__all__ = ["DIRECTORY", "FILE", "FileRecord", "FileRepository"]

FILE = "file"
DIRECTORY = "directory"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One stored file or directory."""

    tenant_id: str
    path: str
    parent: str
    kind: str
    size: int
    digest: str | None
    version: int
    created_at: float
    modified_at: float

    @property
    def is_dir(self) -> bool:
        return self.kind == DIRECTORY


def _record(row: Any) -> FileRecord:
    return FileRecord(*row)


_COLUMNS = (files.c.tenant_id, files.c.path, files.c.parent, files.c.kind, files.c.size,
            files.c.digest, files.c.version, files.c.created_at, files.c.modified_at)


# Hot statements are built once; only their parameters change per call.
_GET = select(*_COLUMNS).where(files.c.tenant_id == bindparam("tenant_id"),
                               files.c.path == bindparam("path"))
_GET_FOR_UPDATE = _GET.with_for_update()
_GET_KEY_SHARE = _GET.with_for_update(read=True, key_share=True)


def _subtree(tenant_id: str, root: str) -> Any:
    # '0' is the code point after '/', so the range holds exactly the paths below root.
    below = and_(files.c.path > root.rstrip("/") + "/", files.c.path < root.rstrip("/") + "0")
    return and_(files.c.tenant_id == tenant_id, below)


class FileRepository:
    """SQL access to the ``files`` table on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._dialect = conn.dialect.name

    def get(self, tenant_id: str, path: str, *, for_update: bool = False,
            key_share: bool = False) -> FileRecord | None:
        """The row at ``path`` or ``None``; ``for_update`` locks it until commit (PostgreSQL),
        ``key_share`` only against its deletion (a directory a writer creates a file in)."""
        query = _GET_FOR_UPDATE if for_update else _GET_KEY_SHARE if key_share else _GET
        row = self.conn.execute(query, {"tenant_id": tenant_id, "path": path}).first()
        return _record(row) if row else None

    def get_many(self, tenant_id: str, paths: Sequence[str]) -> dict[str, FileRecord]:
        """Rows for any of ``paths`` that exist, keyed by path."""
        if not paths:
            return {}
        query = select(*_COLUMNS).where(files.c.tenant_id == tenant_id, files.c.path.in_(paths))
        return {r.path: r for r in map(_record, self.conn.execute(query))}

    def insert_directory(self, tenant_id: str, path: str, parent: str, now: float) -> bool:
        """Create a directory row unless the path exists; True if this call created it."""
        values = {"tenant_id": tenant_id, "path": path, "parent": parent, "kind": DIRECTORY,
                  "size": 0, "digest": None, "version": 1, "created_at": now, "modified_at": now}
        stmt = self._insert_ignore().values(**values).returning(files.c.path)
        return self.conn.execute(stmt).first() is not None

    def _insert_ignore(self) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(files).on_conflict_do_nothing()
        return sqlite.insert(files).on_conflict_do_nothing()

    def insert_file(self, tenant_id: str, path: str, parent: str, *, size: int, digest: str,
                    now: float) -> FileRecord:
        """Create a file row; the caller has checked that the path is free."""
        record = FileRecord(tenant_id, path, parent, FILE, size, digest, 1, now, now)
        self.conn.execute(insert(files).values(**_as_values(record)))
        return record

    def replace_file(self, old: FileRecord, *, size: int, digest: str, now: float,
                     path: str | None = None) -> FileRecord | None:
        """Point ``old``'s row at new content if its version is still current.

        Returns the new record, or ``None`` when another writer changed the row first
        (compare-and-swap on ``version``).
        """
        result = self.conn.execute(
            update(files)
            .where(files.c.tenant_id == old.tenant_id, files.c.path == old.path,
                   files.c.version == old.version)
            .values(size=size, digest=digest, version=old.version + 1, modified_at=now))
        if result.rowcount != 1:
            return None
        return FileRecord(old.tenant_id, old.path, old.parent, FILE, size, digest,
                          old.version + 1, old.created_at, now)

    def delete(self, tenant_id: str, path: str) -> bool:
        """Delete one row; True if it existed."""
        result = self.conn.execute(
            delete(files).where(files.c.tenant_id == tenant_id, files.c.path == path))
        return result.rowcount == 1

    def delete_subtree(self, tenant_id: str, root: str) -> tuple[int, int]:
        """Delete every row strictly below ``root``; returns the ``(bytes, files)`` of the
        files this statement deleted. Refund exactly these: on PostgreSQL (READ COMMITTED)
        a total read by an earlier statement can miss a row a concurrent writer committed
        in between, which this DELETE still removes."""
        rows = self.conn.execute(delete(files).where(_subtree(tenant_id, root))
                                 .returning(files.c.kind, files.c.size)).all()
        return (sum(int(size) for kind, size in rows if kind == FILE),
                sum(1 for kind, _ in rows if kind == FILE))

    def lock_directories(self, tenant_id: str, root: str) -> list[str]:
        """Lock ``root`` and every directory below it (PostgreSQL ``FOR UPDATE``, in path
        order) before removing them: a writer holding a ``key_share`` lock on one commits
        first, so the removal's next statements see its file; a later writer waits, then
        finds the directory gone and creates it anew. Never a file under a removed
        directory. (SQLite serialises writers anyway.) Returns the paths locked.

        A directory committed while the lock waited (by a writer holding a lock on its
        parent) is not in that statement's snapshot, so lock again until nothing new
        turns up."""
        query = (select(files.c.path)
                 .where(files.c.tenant_id == tenant_id, files.c.kind == DIRECTORY,
                        or_(files.c.path == root, _subtree(tenant_id, root)))
                 .order_by(files.c.path).with_for_update())
        locked: set[str] = set()
        while True:
            found = {r[0] for r in self.conn.execute(query)}
            if found <= locked or self._dialect != "postgresql":
                return sorted(locked | found)
            locked |= found

    def delete_partition(self, tenant_id: str) -> int:
        """Delete every row of a partition (a whole tenant)."""
        return self.conn.execute(delete(files).where(files.c.tenant_id == tenant_id)).rowcount

    def partition_totals(self, tenant_id: str) -> tuple[int, int]:
        """``(bytes, files)`` stored in a whole partition (consistency checks)."""
        row = self.conn.execute(select(func.coalesce(func.sum(files.c.size), 0), func.count())
                                .where(files.c.tenant_id == tenant_id,
                                       files.c.kind == FILE)).first()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def has_children(self, tenant_id: str, path: str) -> bool:
        query = select(files.c.path).where(files.c.tenant_id == tenant_id,
                                           files.c.parent == path).limit(1)
        return self.conn.execute(query).first() is not None

    def children(self, tenant_id: str, parent: str, *, after: str | None,
                 limit: int) -> list[FileRecord]:
        """Direct children of ``parent`` in path order, starting after ``after``."""
        query = select(*_COLUMNS).where(files.c.tenant_id == tenant_id, files.c.parent == parent)
        if after is not None:
            query = query.where(files.c.path > after)
        query = query.order_by(files.c.path).limit(limit)
        return [_record(r) for r in self.conn.execute(query)]

    def subtree(self, tenant_id: str, root: str, *, after: str | None,
                limit: int) -> list[FileRecord]:
        """Every row strictly below ``root`` in path order, starting after ``after``."""
        query = select(*_COLUMNS).where(_subtree(tenant_id, root))
        if after is not None:
            query = query.where(files.c.path > after)
        query = query.order_by(files.c.path).limit(limit)
        return [_record(r) for r in self.conn.execute(query)]

    def tenant_roots(self, *, after: str | None, limit: int) -> list[FileRecord]:
        """Root directories of registered tenants (the entries of ``/tenants``), by tenant id.

        The only read that spans partitions; the service lets only administrators list
        ``/tenants``.
        """
        query = select(*_COLUMNS).join(
            tenants, and_(files.c.tenant_id == tenants.c.tenant_id,
                          files.c.path == "/tenants/" + tenants.c.tenant_id))
        if after is not None:
            query = query.where(tenants.c.tenant_id > after)
        query = query.order_by(tenants.c.tenant_id).limit(limit)
        return [_record(r) for r in self.conn.execute(query)]

    def move_subtree(self, tenant_id: str, src: str, dst: str) -> int:
        """Rename ``src`` and everything below it to live under ``dst`` (same partition)."""
        n = len(src)
        moved = self.conn.execute(
            update(files)
            .where(_subtree(tenant_id, src))
            .values(path=dst + func.substr(files.c.path, n + 1),
                    parent=dst + func.substr(files.c.parent, n + 1))).rowcount
        return moved

    def move_row(self, record: FileRecord, tenant_id: str, path: str, parent: str,
                 now: float) -> FileRecord:
        """Re-key one row (rename of a file or of a directory's own row)."""
        moved = FileRecord(tenant_id, path, parent, record.kind, record.size, record.digest,
                           record.version + 1, record.created_at, now)
        self.conn.execute(delete(files).where(files.c.tenant_id == record.tenant_id,
                                              files.c.path == record.path))
        self.conn.execute(insert(files).values(**_as_values(moved)))
        return moved

    def digests(self, tenant_id: str) -> set[str]:
        """Every blob digest the partition references (the mark phase of GC)."""
        query = select(files.c.digest).where(files.c.tenant_id == tenant_id,
                                             files.c.digest.is_not(None)).distinct()
        return {row[0] for row in self.conn.execute(query)}

    def files_with_digests(self, tenant_id: str) -> list[tuple[str, str, int]]:
        """``(path, digest, size)`` of every file in the partition (consistency checks)."""
        query = select(files.c.path, files.c.digest, files.c.size).where(
            files.c.tenant_id == tenant_id, files.c.kind == FILE)
        return [(r[0], r[1], r[2]) for r in self.conn.execute(query)]

    def orphaned_rows(self, tenant_id: str) -> list[str]:
        """Paths whose parent directory row is missing (``/`` and tenant roots excepted)."""
        parent_alias = files.alias("p")
        query = (
            select(files.c.path)
            .outerjoin(parent_alias, and_(parent_alias.c.tenant_id == files.c.tenant_id,
                                          parent_alias.c.path == files.c.parent,
                                          parent_alias.c.kind == DIRECTORY))
            .where(files.c.tenant_id == tenant_id, parent_alias.c.path.is_(None),
                   files.c.parent.not_in(["/", "/tenants"])))
        return [r[0] for r in self.conn.execute(query)]


def _as_values(record: FileRecord) -> dict[str, Any]:
    return {c.name: getattr(record, c.name) for c in _COLUMNS}
