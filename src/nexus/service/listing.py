"""Paged, permission-filtered listings, including those that span tenant partitions.

A listing walks *sources* in a fixed order — the system partition first, then tenants
by id — each in path order, so a cursor ``(partition, last path)`` resumes exactly where
the previous page stopped. Permission filtering happens once per fetched batch, never
per entry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

from sqlalchemy import Connection

from nexus import paths
from nexus.errors import InvalidArgumentError
from nexus.service.access import AccessGate
from nexus.store import FileRecord, FileRepository, TenantRepository
from nexus.types import FileInfo, Page, Principal, iso_time

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Lister", "file_info"]

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
_ROOTS = "/tenants*"  # pseudo-partition of the non-recursive listing of /tenants


def file_info(record: FileRecord) -> FileInfo:
    """The API's view of a stored row."""
    return FileInfo(
        path=record.path,
        name=paths.basename(record.path) if record.path != "/" else "",
        type=record.kind,
        size=record.size,
        etag=record.digest,
        version=record.version,
        created_at=iso_time(record.created_at),
        modified_at=iso_time(record.modified_at),
    )


def encode_cursor(partition: str, after: str) -> str:
    raw = json.dumps([partition, after], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        partition, after = json.loads(base64.urlsafe_b64decode(padded))
        if isinstance(partition, str) and isinstance(after, str):
            return partition, after
    except (ValueError, TypeError):
        pass
    raise InvalidArgumentError("invalid listing cursor")


class Lister:
    """Produces pages of :class:`FileInfo` for a directory, recursively or not."""

    def __init__(self, gate: AccessGate) -> None:
        self._gate = gate

    def page(self, conn: Connection, principal: Principal, path: str, *, recursive: bool,
             limit: int | None, cursor: str | None) -> Page:
        """Up to ``limit`` readable entries below ``path`` after ``cursor``."""
        if limit is None:
            limit = DEFAULT_PAGE_SIZE
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidArgumentError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        start = decode_cursor(cursor) if cursor else None
        entries: list[FileInfo] = []
        last: tuple[str, str] | None = None
        full: tuple[str, str] | None = None
        # Batches are one larger than the page, so a full page knows whether more follows
        # and the last page never comes back empty.
        for partition, batch in self._batches(conn, path, recursive, start, limit + 1):
            if full is not None:
                return Page(entries, encode_cursor(*full))
            readable = self._gate.readable(principal, [r.path for r in batch])
            for record, ok in zip(batch, readable, strict=True):
                if full is not None:
                    return Page(entries, encode_cursor(*full))
                last = (partition, record.path if partition != _ROOTS else record.tenant_id)
                if ok:
                    entries.append(file_info(record))
                    if len(entries) == limit:
                        full = last
        return Page(entries, None)

    def _batches(self, conn: Connection, path: str, recursive: bool,
                 start: tuple[str, str] | None,
                 size: int) -> Iterator[tuple[str, list[FileRecord]]]:
        repo = FileRepository(conn)
        for partition, root, fetch in self._sources(conn, path, recursive):
            if start is not None and _partition_order(partition) < _partition_order(start[0]):
                continue
            after = start[1] if start is not None and start[0] == partition else None
            while batch := fetch(repo, partition, root, after, size):
                yield partition, batch
                after = batch[-1].path if partition != _ROOTS else batch[-1].tenant_id
                if len(batch) < size:
                    break

    def _sources(self, conn: Connection, path: str, recursive: bool) -> Iterator[tuple]:
        if not recursive:
            if path == paths.TENANTS_ROOT:
                yield _ROOTS, path, _tenant_roots
            else:
                child_partition = paths.partition_of(path.rstrip("/") + "/x")
                yield child_partition, path, _children
            return
        if path not in ("/", paths.TENANTS_ROOT):
            yield paths.partition_of(path), path, _subtree
            return
        yield paths.SYSTEM_PARTITION, path, _subtree
        for tenant_id in TenantRepository(conn).iter_ids():
            yield tenant_id, paths.TENANTS_ROOT, _subtree


def _partition_order(partition: str) -> tuple[int, str]:
    # The system partition (and the /tenants pseudo-partition) sort before every tenant.
    return (0, "") if partition in (paths.SYSTEM_PARTITION, _ROOTS) else (1, partition)


def _children(repo: FileRepository, partition: str, root: str, after: str | None,
              size: int) -> list[FileRecord]:
    return repo.children(partition, root, after=after, limit=size)


def _subtree(repo: FileRepository, partition: str, root: str, after: str | None,
             size: int) -> list[FileRecord]:
    return repo.subtree(partition, root, after=after, limit=size)


def _tenant_roots(repo: FileRepository, partition: str, root: str, after: str | None,
                  size: int) -> list[FileRecord]:
    return repo.tenant_roots(after=after, limit=size)
