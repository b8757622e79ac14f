"""File operations: the steps every call runs, in the same order.

normalise the path → ask the :class:`~nexus.service.access.AccessGate` → stream content
into the blob store (before any transaction, so a crash leaves at most an orphan blob) →
one metadata transaction → result. A write is acknowledged only after its blob is fsynced
and its transaction has committed.

An upload is metered against the tenant's room as it streams and stops at the first
chunk past it; one the transaction refuses takes back the blob it created
(:meth:`~nexus.blobs.BlobStore.withdraw`). Long downloads and uploads re-check their key,
tenant and permission while they run (:mod:`nexus.service.streams`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import Connection

from nexus import paths
from nexus.blobs import CHUNK_SIZE, BlobInfo, BlobNotFound, BlobStore, iter_chunks
from nexus.blobs.base import Data
from nexus.errors import (
    ConflictError,
    DirectoryNotEmptyError,
    InternalError,
    InvalidArgumentError,
    LimitExceededError,
    NexusError,
    NexusFileExistsError,
    NexusFileNotFoundError,
    NexusIsADirectoryError,
    NexusNotADirectoryError,
    NexusPermissionError,
)
from nexus.service import incarnations
from nexus.service.access import AccessGate, Action
from nexus.service.audit import AuditLog
from nexus.service.listing import Lister, file_info
from nexus.service.permissions import RevisionTracker
from nexus.service.quotas import UNLIMITED, QuotaLedger
from nexus.service.share_alias import ShareAliases, alias_tenants
from nexus.service.streams import StreamChecks, StreamGuard, rechecked
from nexus.service.tenant_state import TenantStates
from nexus.service.tenants import (
    TENANT_DOCUMENT,
    TenantService,
    is_tenant_document,
    register_tenant,
)
from nexus.store import (
    Database,
    FileRecord,
    FileRepository,
    TenantRepository,
    UsageRepository,
    WriteConflict,
)
from nexus.store.audit import AuditRepository
from nexus.store.keys import KeyRepository
from nexus.store.shares import ShareRepository
from nexus.store.tuples import ModelRepository, TupleRepository
from nexus.types import FileInfo, Page, Principal, iso_time

__all__ = ["FileService", "ReadStream"]

T = TypeVar("T")
_ROOT = FileRecord(paths.SYSTEM_PARTITION, "/", "", "directory", 0, None, 1, 0.0, 0.0)
_RETRIES = 5
#: A write of at most this many bytes in memory skips the advisory room check before its
#: content is stored (the quota charge at commit is exact either way).
SMALL_WRITE = 64 * 1024
#: write_many's bounds per call: files, and bytes in all (they travel base64 in one body).
MAX_BATCH_FILES = 1_000
MAX_BATCH_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReadStream:
    """An open read: the file's metadata and an iterator over the requested bytes."""

    info: FileInfo
    chunks: Iterator[bytes]


class FileService:
    """mkdir, write, read, append, list, stat, delete, rename, copy — for one deployment."""

    def __init__(self, *, db: Database, blobs: BlobStore, gate: AccessGate,
                 revisions: RevisionTracker, quotas: QuotaLedger, tenants: TenantService,
                 states: TenantStates, audit: AuditLog, aliases: ShareAliases,
                 clock: Callable[[], float] = time.time,
                 stream_checks: StreamChecks | None = None) -> None:
        self._states = states
        self._audit = audit
        self._aliases = aliases
        self._db = db
        self._blobs = blobs
        self._gate = gate
        self._revisions = revisions
        self._quotas = quotas
        self._tenants = tenants
        self._clock = clock
        self._lister = Lister(gate)
        self._streams = StreamGuard(db=db, blobs=blobs, quotas=quotas, gate=gate,
                                    states=states, clock=clock, resolve=self._resolve,
                                    checks=stream_checks or StreamChecks())

    @property
    def stream_checks(self) -> StreamChecks:
        """How often long streams re-check their grant; assign to tune it (or, in tests,
        to drive the re-checks with a clock of their own)."""
        return self._streams.checks

    @stream_checks.setter
    def stream_checks(self, checks: StreamChecks) -> None:
        self._streams.checks = checks

    # -- directories -------------------------------------------------------------------

    def mkdir(self, principal: Principal, path: str, parents: bool = True,
              exist_ok: bool = True) -> FileInfo:
        """Create a directory (and, with ``parents``, its missing ancestors)."""
        path = paths.normalize(path)
        self._gate.require(principal, Action.WRITE, path)
        _refuse_document(path)
        if path == "/":
            return self._exists_or_raise(_ROOT, exist_ok)

        def run(conn: Connection) -> FileInfo:
            repo = FileRepository(conn)
            current = repo.get(paths.partition_of(path), path)
            if current is not None:
                return self._exists_or_raise(current, exist_ok)
            if parents:
                self._ensure_parents(conn, path, principal)
            else:
                parent_dir = self._get(repo, paths.parent(path) or "/", key_share=True)
                if parent_dir is None:
                    raise NexusFileNotFoundError(f"parent directory of {path} does not exist",
                                                 path=path)
                _require_dir(parent_dir)
            self._create_directory(conn, path, principal)
            return file_info(self._get(repo, path) or _ROOT)

        return self._transaction(run, (principal, "mkdir", path))

    def rmdir(self, principal: Principal, path: str, recursive: bool = False) -> None:
        """Remove a directory; a non-empty one only with ``recursive=True``."""
        path = paths.normalize(path)
        self._gate.require(principal, Action.WRITE, path)
        if path == "/":
            raise InvalidArgumentError("the root directory cannot be removed")
        if path == paths.TENANTS_ROOT or path == _tenant_root_of(path):
            # Removing a tenant's root deletes the tenant (keys, users, grants, log):
            # the system administrator's decision, like delete_tenant.
            if not self._gate.is_system_admin(principal):
                raise NexusPermissionError(
                    f"permission denied: only the system administrator removes {path} "
                    "(use delete_tenant)", path=path, permission="owner")

        def run(conn: Connection) -> dict[str, int]:
            repo = FileRepository(conn)
            current = self._get(repo, path)
            if current is None:
                raise NexusFileNotFoundError(f"no such directory: {path}", path=path)
            _require_dir(current)
            if path != "/" and path not in repo.lock_directories(current.tenant_id, path):
                # removed by a concurrent rmdir while this one waited for the lock
                raise NexusFileNotFoundError(f"no such directory: {path}", path=path)
            partitions = self._partitions_below(conn, path)
            if not recursive and any(self._has_entries(conn, p, path) for p in partitions):
                raise DirectoryNotEmptyError(
                    f"directory not empty: {path} (pass recursive=True to remove it all)",
                    path=path)
            bumps = {}
            for partition in partitions:
                if partition != paths.partition_of(path) and partition != paths.SYSTEM_PARTITION:
                    bumps[partition] = self._drop_tenant(conn, partition)
            tenant = paths.tenant_of(path)
            if tenant is not None and path == paths.tenant_root(tenant):
                bumps[tenant] = self._drop_tenant(conn, tenant)
                return bumps
            freed_bytes, freed_files = repo.delete_subtree(current.tenant_id, path)
            repo.delete(current.tenant_id, path)
            self._quotas.charge(conn, tenant, storage=-freed_bytes, files=-freed_files)
            bumps.update(self._drop_grants(conn, path))
            return bumps

        tenant = paths.tenant_of(path)
        whole_tenant = tenant is not None and path == paths.tenant_root(tenant)
        # A deleted tenant's own log goes with it; its tombstone lives in the system log.
        self._advance(self._transaction(
            run, (principal, "tenant.delete" if whole_tenant else "rmdir", path),
            audit_tenant=paths.SYSTEM_PARTITION if whole_tenant else None))

    # -- content -----------------------------------------------------------------------

    def write(self, principal: Principal, path: str, data: Data, *, if_match: str | None = None,
              if_none_match: bool = False) -> FileInfo:
        """Create or replace a file with ``data`` (bytes, a binary stream or an iterator).

        Missing parent directories are created. ``if_match`` makes the write conditional
        on the current etag (:class:`ConflictError` otherwise); ``if_none_match`` makes it
        create-only (:class:`NexusFileExistsError` if the path exists).
        """
        sent = paths.normalize(path)
        path = self._resolve(principal, Action.WRITE, sent)
        _require_not_root(path)
        document_of = is_tenant_document(path)
        if document_of is not None:
            self._tenants.write_document(principal, document_of, b"".join(iter_chunks(data)))
            return self.stat(principal, path)
        _refuse_document(path)
        partition = paths.partition_of(path)
        tenant = paths.tenant_of(path)
        if isinstance(data, bytes | bytearray | memoryview) and len(data) <= SMALL_WRITE:
            # Small content in memory: the charge at commit decides alone; a refusal
            # withdraws what was stored (less than the room read would cost).
            room = UNLIMITED
        else:
            room = self._streams.room(partition, path, tenant, replaces=True)
        blob = self._streams.store(principal, Action.WRITE, sent, path, partition, data, room)

        def run(conn: Connection) -> FileInfo:
            return self._write_row(conn, principal, path, blob, if_match=if_match,
                                   if_none_match=if_none_match)

        return self._commit(partition, blob, run, (principal, "write", path))

    def write_many(self, principal: Principal, files: dict[str, bytes]) -> dict[str, Any]:
        """Write many small files in one call: ``{"results": [...], "written", "failed"}``,
        one result per path in the order given — ``{"path", "ok": True, "info"}`` or
        ``{"path", "ok": False, "error": {"code", "message"}}``.

        The call is refused whole, before any byte is stored, for what the caller
        decides: a bad path, a path given twice, a tenant's record, any path it may not
        write (``NexusPermissionError``, as ``write`` would raise). What the data decides
        at commit is per file: a file refused by the quota or by what is in the way (a
        file where a directory is needed, a directory at the path) leaves the others
        written, and the quota is charged exactly for those. All written files commit in
        one transaction — one durable commit — each with its own audit event. At most
        :data:`MAX_BATCH_FILES` files and :data:`MAX_BATCH_BYTES` bytes
        (``LimitExceededError``)."""
        if not isinstance(files, dict) or not files:
            raise InvalidArgumentError("files must be a non-empty object of path -> bytes")
        if len(files) > MAX_BATCH_FILES:
            raise LimitExceededError(f"write_many takes at most {MAX_BATCH_FILES} files "
                                     f"per call, not {len(files)}", limit="write_many_files")
        if any(not isinstance(data, bytes | bytearray) for data in files.values()):
            raise InvalidArgumentError("every value of files must be bytes")
        total = sum(len(data) for data in files.values())
        if total > MAX_BATCH_BYTES:
            raise LimitExceededError(f"write_many takes at most {MAX_BATCH_BYTES} bytes per "
                                     f"call, not {total}; use write() for large files",
                                     limit="write_many_bytes")
        targets: dict[str, str] = {}  # as sent -> resolved
        for sent in files:
            path = self._resolve(principal, Action.WRITE, paths.normalize(sent))
            _require_not_root(path)
            _refuse_document(path)  # the tenant's record, or under it: write() only
            if path in targets.values():
                raise InvalidArgumentError(f"{path} is given more than once", path=path)
            targets[sent] = path
        staged: list[tuple[str, str, BlobInfo]] = []  # (as sent, resolved path, blob)
        try:
            for sent, path in targets.items():
                staged.append((sent, path, self._blobs.put(paths.partition_of(path),
                                                           files[sent])))
        except BaseException:
            for _sent, path, blob in staged:
                self._blobs.withdraw(paths.partition_of(path), blob)
            raise

        def run(conn: Connection) -> dict[str, FileInfo | NexusError]:
            done: dict[str, FileInfo | NexusError] = {}
            for sent, path, blob in staged:
                try:
                    with conn.begin_nested():  # a refused file rolls back alone
                        done[sent] = self._write_row(conn, principal, path, blob)
                        self._audit.record(conn, principal, "write", path)
                except NexusError as exc:
                    done[sent] = exc
            return done

        try:
            outcome = self._db.run(run, attempts=_RETRIES)
        except BaseException:
            for _sent, path, blob in staged:
                self._blobs.withdraw(paths.partition_of(path), blob)
            raise
        for sent, path, blob in staged:
            if isinstance(outcome[sent], NexusError):
                self._blobs.withdraw(paths.partition_of(path), blob)
        results = [_batch_result(sent, outcome[sent]) for sent in files]
        written = sum(1 for r in results if r["ok"])
        return {"results": results, "written": written, "failed": len(results) - written}

    def _write_row(self, conn: Connection, principal: Principal, path: str, blob: BlobInfo,
                   *, if_match: str | None = None, if_none_match: bool = False) -> FileInfo:
        """The metadata half of a write whose content is stored: the row, its parents and
        the quota charge (refused: ``QuotaExceededError``, nothing changed)."""
        partition, tenant = paths.partition_of(path), paths.tenant_of(path)
        repo = FileRepository(conn)
        current = repo.get(partition, path, for_update=True)
        _check_preconditions(current, path, if_match, if_none_match)
        now = self._clock()
        if current is None:
            return self._create_file(conn, principal, path, blob, now)
        self._quotas.charge(conn, tenant, storage=blob.size - current.size)
        return file_info(self._replace(repo, current, blob.size, blob.digest, now))

    def _create_file(self, conn: Connection, principal: Principal, path: str,
                     blob: BlobInfo, now: float) -> FileInfo:
        """A new file's row over stored content: parents, the charge, the insert."""
        self._ensure_parents(conn, path, principal)
        self._quotas.charge(conn, paths.tenant_of(path), storage=blob.size, files=1)
        return file_info(FileRepository(conn).insert_file(
            paths.partition_of(path), path, _parent(path), size=blob.size,
            digest=blob.digest, now=now))

    def append(self, principal: Principal, path: str, data: Data) -> FileInfo:
        """Append ``data`` to a file (created if missing), atomically.

        Concurrent appends to one file are serialised on its row, so none is lost and
        none interleaves with another.
        """
        sent = paths.normalize(path)
        path = self._resolve(principal, Action.WRITE, sent)
        _require_not_root(path)
        _refuse_document(path)
        partition = paths.partition_of(path)
        tenant = paths.tenant_of(path)
        room = self._streams.room(partition, path, tenant, replaces=False)
        # Stage the new bytes first: the transaction may be retried, a stream cannot.
        tail = self._streams.store(principal, Action.WRITE, sent, path, partition, data, room)

        def run(conn: Connection) -> FileInfo:
            repo = FileRepository(conn)
            current = repo.get(partition, path, for_update=True)
            now = self._clock()
            if current is None:
                return self._create_file(conn, principal, path, tail, now)
            _require_file(current)
            if tail.size == 0:
                return file_info(current)
            self._quotas.charge(conn, tenant, storage=tail.size)
            joined = self._blobs.put(partition, chain(
                self._open_blob(current), self._blobs.open(partition, tail.digest)))
            return file_info(self._replace(repo, current, joined.size, joined.digest, now))

        info = self._commit(partition, tail, run, (principal, "append", path))
        if info.etag != tail.digest:
            # The tail was only staging for the joined content. Withdrawn only if no one
            # stored the same bytes since (an empty file's append stores them again).
            self._blobs.withdraw(partition, tail)
        return info

    def read(self, principal: Principal, path: str, *, offset: int = 0,
             length: int | None = None) -> bytes:
        """The file's bytes ``[offset, offset + length)`` (all of it by default)."""
        return b"".join(self.open_read(principal, path, offset=offset, length=length).chunks)

    def _audited_read(self, principal: Principal, action: str, path: str) -> None:
        self._audit.record_read(principal, action, path)

    def open_read(self, principal: Principal, path: str, *, offset: int = 0,
                  length: int | None = None) -> ReadStream:
        """Stream a file (or a byte range of it) in chunks, without loading it into memory."""
        sent = paths.normalize(path)
        path = self._resolve(principal, Action.READ, sent)
        if not isinstance(offset, int) or offset < 0 or (
                length is not None and (not isinstance(length, int) or length < 0)):
            raise InvalidArgumentError("offset and length must be non-negative integers")
        document_of = is_tenant_document(path)
        if document_of is not None:
            content = self._tenants.read_document(document_of)
            end = None if length is None else offset + length
            return ReadStream(_document_info(path, content), iter([content[offset:end]]))
        with self._db.read() as conn:
            record = self._get(FileRepository(conn), path)
        if record is None:
            raise NexusFileNotFoundError(f"no such file: {path}", path=path)
        _require_file(record)
        offset = min(offset, record.size)  # past the end: no bytes (and no seek overflow)
        end = None if length is None else min(record.size, offset + length)
        self._audited_read(principal, "read", path)
        chunks = self._open_blob(record, offset, end)
        if (record.size if end is None else end) - offset > CHUNK_SIZE:
            chunks = rechecked(chunks, self._streams.recheck(principal, Action.READ, sent, path))
        return ReadStream(file_info(record), chunks)

    # -- metadata ----------------------------------------------------------------------

    def stat(self, principal: Principal, path: str) -> FileInfo:
        """Metadata of a file or directory."""
        path = paths.normalize(path)
        alias_dir = self._alias_directory(principal, path)
        if alias_dir is not None:
            return alias_dir
        path = self._resolve(principal, Action.READ, path)
        document_of = is_tenant_document(path)
        if document_of is not None:
            return _document_info(path, self._tenants.read_document(document_of))
        with self._db.read() as conn:
            record = self._get(FileRepository(conn), path)
        if record is None:
            raise NexusFileNotFoundError(f"no such file or directory: {path}", path=path)
        self._audited_read(principal, "stat", path)
        return file_info(record)

    def exists(self, principal: Principal, path: str) -> bool:
        """True if the path exists. Raises :class:`NexusPermissionError` where it may not
        be read, so existence cannot be probed."""
        try:
            self.stat(principal, path)
        except NexusFileNotFoundError:
            return False
        return True

    def list(self, principal: Principal, path: str = "/", recursive: bool = False, *,
             limit: int | None = None, cursor: str | None = None) -> Page:
        """One page of the entries below ``path`` that the principal may read."""
        path = paths.normalize(path)
        aliases = self._aliases.alias_directory(path) if self._may_see_aliases(
            principal, path, directory=True) else None
        if aliases is not None and not self._exists_row(path):
            return self._list_aliases(principal, path, *aliases)
        self._gate.require(principal, Action.READ, path)
        with self._db.read() as conn:
            target = self._get(FileRepository(conn), path)
            if target is None:
                raise NexusFileNotFoundError(f"no such directory: {path}", path=path)
            if not target.is_dir:
                return Page([file_info(target)], None)
            # The live .tenant.json has no stored row: like a dotfile, it is read and
            # written by name but not listed, so listings count only stored files.
            page = self._lister.page(conn, principal, path, recursive=recursive, limit=limit,
                                     cursor=cursor)
        self._audited_read(principal, "list", path)
        return page

    def delete(self, principal: Principal, path: str) -> None:
        """Delete a file (use :meth:`rmdir` for directories)."""
        path = paths.normalize(path)
        self._gate.require(principal, Action.WRITE, path)
        _refuse_document(path)

        def run(conn: Connection) -> dict[str, int]:
            repo = FileRepository(conn)
            current = repo.get(paths.partition_of(path), path, for_update=True)
            if current is None:
                raise NexusFileNotFoundError(f"no such file: {path}", path=path)
            _require_file(current)
            repo.delete(current.tenant_id, path)
            self._quotas.charge(conn, paths.tenant_of(path), storage=-current.size, files=-1)
            return self._drop_grants(conn, path)

        self._advance(self._transaction(run, (principal, "delete", path)))

    def rename(self, principal: Principal, src: str, dst: str, *,
               overwrite: bool = False) -> FileInfo:
        """Move a file or directory. An existing file at ``dst`` is replaced only with
        ``overwrite=True``; an existing directory never is."""
        src, dst = paths.normalize(src), paths.normalize(dst)
        self._gate.require(principal, Action.WRITE, src)
        self._gate.require(principal, Action.WRITE, dst)
        for p in (src, dst):
            _refuse_document(p)
            if p in ("/", paths.TENANTS_ROOT) or p == _tenant_root_of(p):
                raise InvalidArgumentError(f"{p} cannot be renamed or replaced")
        if paths.is_within(dst, src):
            raise InvalidArgumentError(f"cannot move {src} into itself ({dst})")
        src_partition, dst_partition = paths.partition_of(src), paths.partition_of(dst)

        def run(conn: Connection) -> tuple[FileInfo, dict[str, int]]:
            repo = FileRepository(conn)
            # Directories before files, the order rmdir locks in: a rename into a
            # directory being removed waits for it instead of deadlocking with it.
            self._lock_nearest_directory(conn, dst)
            source = repo.get(src_partition, src, for_update=True)
            if source is None:
                raise NexusFileNotFoundError(f"no such file or directory: {src}", path=src)
            if source.is_dir and src_partition != dst_partition:
                raise InvalidArgumentError("directories cannot be moved between tenants; "
                                           "copy the files instead")
            self._clear_destination(conn, source, dst, overwrite)
            self._ensure_parents(conn, dst, principal)
            now = self._clock()
            if src_partition != dst_partition:
                self._quotas.charge(conn, paths.tenant_of(dst), storage=source.size, files=1)
                self._quotas.charge(conn, paths.tenant_of(src), storage=-source.size, files=-1)
                blob = self._blobs.copy_from(self._blobs, src_partition, dst_partition,
                                             source.digest or "")
                moved = repo.insert_file(dst_partition, dst, _parent(dst), size=blob.size,
                                         digest=blob.digest, now=now)
                repo.delete(src_partition, src)
                # Grants do not follow a file into another tenant.
                return file_info(moved), self._drop_grants(conn, src)
            if source.is_dir:
                # As rmdir does: a writer holding a directory below commits first, so the
                # move sees its file (never a file left under the old path).
                repo.lock_directories(src_partition, src)
            moved = repo.move_row(source, dst_partition, dst, _parent(dst), now)
            if source.is_dir:
                repo.move_subtree(src_partition, src, dst)
            return file_info(moved), self._move_grants(conn, src, dst)

        info, bumps = self._transaction(run, (principal, "rename", f"{src} -> {dst}"),
                                        audit_tenant=paths.partition_of(src),
                                        audit_between=(src, dst))
        self._advance(bumps)
        return info

    def copy(self, principal: Principal, src: str, dst: str, *,
             overwrite: bool = False) -> FileInfo:
        """Copy a file. Within a tenant the copy shares the stored content."""
        src, dst = paths.normalize(src), paths.normalize(dst)
        self._gate.require(principal, Action.READ, src)
        self._gate.require(principal, Action.WRITE, dst)
        _require_not_root(dst)
        _refuse_document(src)
        _refuse_document(dst)
        src_partition, dst_partition = paths.partition_of(src), paths.partition_of(dst)
        with self._db.read() as conn:
            source = self._get(FileRepository(conn), src)
        if source is None:
            raise NexusFileNotFoundError(f"no such file: {src}", path=src)
        _require_file(source)
        digest, size = source.digest or "", source.size
        tenant = paths.tenant_of(dst)
        blob = None
        if src_partition != dst_partition:
            self._streams.room(dst_partition, dst, tenant, replaces=True).refuse(size)
            blob = self._blobs.copy_from(self._blobs, src_partition, dst_partition, digest)
            digest, size = blob.digest, blob.size

        def run(conn: Connection) -> FileInfo:
            repo = FileRepository(conn)
            current = repo.get(dst_partition, dst, for_update=True)
            now = self._clock()
            if current is not None:
                if not overwrite or current.is_dir:
                    raise NexusFileExistsError(f"destination exists: {dst}", path=dst)
                self._quotas.charge(conn, tenant, storage=size - current.size)
                return file_info(self._replace(repo, current, size, digest, now))
            self._ensure_parents(conn, dst, principal)
            self._quotas.charge(conn, tenant, storage=size, files=1)
            return file_info(repo.insert_file(dst_partition, dst, _parent(dst), size=size,
                                              digest=digest, now=now))

        return self._commit(dst_partition, blob, run, (principal, "copy", f"{src} -> {dst}"),
                            audit_between=(src, dst))

    # -- helpers -----------------------------------------------------------------------

    def _commit(self, partition: str, blob: BlobInfo | None, run: Callable[[Connection], T],
                audit: tuple[Principal, str, str], *,
                audit_between: tuple[str, str] | tuple[()] = ()) -> T:
        """:meth:`_transaction` for a change that stored ``blob`` first. If the work
        refuses (its charge, an ``If-Match``/``If-None-Match`` precondition, a path taken
        meanwhile: raised inside the work, so nothing committed) the blob is withdrawn at
        once, unless this put found the content stored or a writer of the same content
        stored it again since (who may reference it): then it is garbage collection's."""
        refusals: list[NexusError] = []

        def refusing(conn: Connection) -> T:
            try:
                return run(conn)
            except NexusError as exc:
                refusals.append(exc)
                raise

        try:
            return self._transaction(refusing, audit, audit_between=audit_between)
        except NexusError as exc:
            if blob is not None and refusals and exc is refusals[-1]:
                self._blobs.withdraw(partition, blob)
            raise

    def _transaction(self, run: Callable[[Connection], T],
                     audit: tuple[Principal, str, str] | None = None,
                     audit_tenant: str | None = None,
                     audit_between: tuple[str, str] | tuple[()] = ()) -> T:
        # A unique-key race (two creators of one path on PostgreSQL) is retried from the
        # top by the unit of work: the second attempt sees the winner's row and takes the
        # "exists" branch.
        def work(conn: Connection) -> T:
            result = run(conn)
            if audit is not None:  # same transaction: the event exists iff the change
                self._audit.record(conn, *audit, tenant=audit_tenant, between=audit_between)
            return result

        return self._db.run(work, attempts=_RETRIES)

    def _exists_row(self, path: str) -> bool:
        with self._db.read() as conn:
            return self._get(FileRepository(conn), path) is not None

    def authorize(self, principal: Principal, action: Action, path: str) -> str:
        """Refuse unless ``principal`` may do ``action`` on ``path`` (a share alias
        resolved as the operations resolve it); the path that names. For callers that
        act later on the principal's behalf (signed URLs), which check again then."""
        return self._resolve(principal, action, paths.normalize(path))

    def resolve_alias(self, principal: Principal, path: str) -> str:
        """The source path a share alias stands for, as ``principal`` sees it (no
        permission check), or ``path`` itself."""
        path = paths.normalize(path)
        return self._aliases.resolve(path) if self._may_see_aliases(principal, path) else path

    def _resolve(self, principal: Principal, action: Action, path: str) -> str:
        """``path`` with a share alias replaced by its source, gated for ``action``.

        Aliases resolve only for members of the tenant the alias is in or of the source
        tenant it names: for anyone else the path is what it says, so a denial cannot
        tell a third tenant which shares another receives (nor how fast: no share is
        looked up). A denial names the path as sent.
        """
        if not self._may_see_aliases(principal, path):
            self._gate.require(principal, action, path)
            return path
        resolved = self._aliases.resolve(path)
        self._gate.require(principal, action, resolved, shown=path)
        return resolved

    def _may_see_aliases(self, principal: Principal, path: str, *,
                         directory: bool = False) -> bool:
        # An alias directory is a view of the target's namespace: its members only. An
        # alias of a file also resolves for the source's members, who name their own file.
        tenants = alias_tenants(path)
        if tenants is None:
            return False
        return any(self._gate.may_act_in(principal, t)
                   for t in (tenants[:1] if directory else tenants))

    def _alias_directory(self, principal: Principal, path: str) -> FileInfo | None:
        """The virtual ``from-<source>`` directory, for members of its tenant."""
        if not self._may_see_aliases(principal, path, directory=True):
            return None
        aliases = self._aliases.alias_directory(path)
        if aliases is None or self._exists_row(path) or not aliases[1]:
            return None
        now = iso_time(self._clock())
        return FileInfo(path=path, name=paths.basename(path), type="directory", size=0,
                        etag=None, version=1, created_at=now, modified_at=now)

    def _list_aliases(self, principal: Principal, path: str, target: str,
                      entries: list[tuple[str, str]]) -> Page:
        if not entries:
            raise NexusFileNotFoundError(f"no such directory: {path}", path=path)
        readable = self._gate.readable(principal, [source for _, source in entries])
        shown = []
        with self._db.read() as conn:
            repo = FileRepository(conn)
            for (alias, source), ok in zip(entries, readable, strict=True):
                record = self._get(repo, source) if ok else None
                if record is not None:
                    info = file_info(record)
                    shown.append(FileInfo(alias, paths.basename(alias), info.type, info.size,
                                          info.etag, info.version, info.created_at,
                                          info.modified_at))
        return Page(shown, None)

    def _drop_grants(self, conn: Connection, path: str) -> dict[str, int]:
        """Delete tuples on ``path`` and below: no permission outlives its file."""
        tenant = paths.tenant_of(path)
        if tenant is None:
            return {}
        tuples = TupleRepository(conn)
        if not tuples.delete_objects_below(tenant, "file", path):
            return {}
        ShareRepository(conn).revoke_below(tenant, path, self._clock())
        return {tenant: tuples.bump_revision(tenant)}

    def _move_grants(self, conn: Connection, src: str, dst: str) -> dict[str, int]:
        tenant = paths.tenant_of(src)
        if tenant is None:
            return {}
        tuples = TupleRepository(conn)
        if not tuples.move_objects(tenant, "file", src, dst):
            return {}
        ShareRepository(conn).move_below(tenant, src, dst)
        return {tenant: tuples.bump_revision(tenant)}

    def _drop_tenant(self, conn: Connection, tenant: str) -> int:
        """Remove a tenant's files, tuples (its own and its shares in other tenants'
        stores), keys, users, counters and registration (``rmdir /tenants/<id>``)."""
        tuples = TupleRepository(conn)
        shares = ShareRepository(conn)
        incarnation = TenantRepository(conn).incarnation(tenant)
        for share in shares.incoming(tenant):
            tuples.delete(share.source_tenant, share.tuple_id)
            self._revisions.advanced(share.source_tenant,
                                     tuples.bump_revision(share.source_tenant))
        if incarnation is not None:
            # Every other reference to this life of the tenant, in any tenant's store
            # (grants to its members or users, its users in others' groups): dead already
            # by construction, removed here so nothing stale is listed or counted.
            for other in tuples.delete_references(incarnations.ref(tenant, incarnation)):
                if other != tenant:
                    self._revisions.advanced(other, tuples.bump_revision(other))
        shares.delete_tenant(tenant)
        files = FileRepository(conn)
        files.lock_directories(tenant, paths.tenant_root(tenant))
        files.delete_partition(tenant)
        TenantRepository(conn).remove(tenant)
        KeyRepository(conn).delete_tenant(tenant)
        UsageRepository(conn).delete(tenant)
        AuditRepository(conn).delete_tenant(tenant)
        ModelRepository(conn).delete_tenant(tenant)
        tuples.delete_partition(tenant)
        return tuples.bump_revision(tenant)

    def _advance(self, bumps: dict[str, int]) -> None:
        for tenant, revision in bumps.items():
            self._revisions.advanced(tenant, revision)
            with self._db.read() as conn:
                gone = not TenantRepository(conn).exists(tenant)
            if gone:
                # The tenant was deleted: its content goes too (after the commit, so a
                # crash leaves only unreferenced blobs, which gc also removes).
                self._states.forget(tenant)
                self._blobs.delete_namespace(tenant)

    def delete_tenant(self, principal: Principal, tenant_id: str,
                      confirm: bool = False) -> dict[str, Any]:
        """Delete a tenant for good: files, content, grants in and out, keys, users and
        counters. Without ``confirm=True`` it changes nothing and says what would go."""
        self._gate.require_system_admin(principal, "deletes tenants")
        root = paths.tenant_root(tenant_id)
        with self._db.read() as conn:
            if not TenantRepository(conn).exists(tenant_id):
                raise NexusFileNotFoundError(f"no tenant {tenant_id!r}")
            usage = UsageRepository(conn).get(tenant_id)
            grants = len(TupleRepository(conn).list(tenant_id, now=self._clock(),
                                                    include_expired=True, limit=100_000))
        summary = {"tenant_id": tenant_id, "files": usage.files,
                   "storage_bytes": usage.storage_bytes, "users": usage.users,
                   "grants": grants}
        if confirm is not True:
            raise ConflictError(
                f"deleting tenant {tenant_id} would remove {usage.files} files "
                f"({usage.storage_bytes} bytes), {usage.users} users with their keys and "
                f"{grants} grants; call again with confirm=True", **summary)
        with self._db.read() as conn:
            has_root = FileRepository(conn).get(tenant_id, root) is not None
        if has_root:
            self.rmdir(principal, root, recursive=True)
        else:
            self._advance(self._transaction(
                lambda conn: {tenant_id: self._drop_tenant(conn, tenant_id)},
                (principal, "tenant.delete", root), audit_tenant=paths.SYSTEM_PARTITION))
        return {**summary, "deleted": True}

    def _get(self, repo: FileRepository, path: str, *,
             key_share: bool = False) -> FileRecord | None:
        if path == "/":
            return _ROOT
        return repo.get(paths.partition_of(path), path, key_share=key_share)

    def _ensure_parents(self, conn: Connection, path: str, principal: Principal) -> None:
        """Create every missing ancestor directory of ``path``; fail on a file in the way."""
        parent = paths.parent(path)
        if parent is None or parent == "/":
            return
        # The parent is locked against deletion until commit (like a foreign key): a
        # concurrent rmdir waits for this write (and then removes its file with the
        # rest), or this write waits for the rmdir and finds the directory gone — never
        # a file left under a removed directory.
        repo = FileRepository(conn)
        existing = self._get(repo, parent, key_share=True)
        if existing is not None:
            _require_dir(existing)
            return
        self._ensure_parents(conn, parent, principal)
        self._create_directory(conn, parent, principal)
        # A concurrent writer may have created it first (then the insert did nothing):
        # lock it either way; if an rmdir removed it meanwhile, start again.
        if self._get(repo, parent, key_share=True) is None:
            raise WriteConflict(parent)

    def _lock_nearest_directory(self, conn: Connection, path: str) -> None:
        """Take :meth:`_ensure_parents`' lock on the nearest existing ancestor of ``path``
        now (nothing is created)."""
        repo = FileRepository(conn)
        parent = paths.parent(path)
        while parent is not None and self._get(repo, parent, key_share=True) is None:
            parent = paths.parent(parent)

    def _create_directory(self, conn: Connection, path: str, principal: Principal) -> None:
        """Insert a directory row; a tenant root registers its tenant — administrators
        only, so a tenant user's operation that passed the gate and then waited for a
        concurrent deletion of its tenant cannot bring the tenant back (keyless,
        ownerless)."""
        _refuse_document(path)
        now = self._clock()
        tenant = paths.tenant_of(path)
        if tenant is not None and path == paths.tenant_root(tenant):
            if not self._gate.is_system_admin(principal):
                raise NexusFileNotFoundError(
                    f"tenant {tenant} does not exist; create it first (create_tenant or "
                    f"mkdir {path})", path=path)
            register_tenant(conn, tenant, now)
        FileRepository(conn).insert_directory(paths.partition_of(path), path, _parent(path), now)

    def _replace(self, repo: FileRepository, current: FileRecord, size: int, digest: str,
                 now: float) -> FileRecord:
        _require_file(current)
        replaced = repo.replace_file(current, size=size, digest=digest, now=now)
        if replaced is None:  # the row changed under us; retry the whole transaction
            raise WriteConflict(current.path)
        return replaced

    def _clear_destination(self, conn: Connection, source: FileRecord, dst: str,
                           overwrite: bool) -> None:
        repo = FileRepository(conn)
        target = repo.get(paths.partition_of(dst), dst, for_update=True)
        if target is None:
            return
        if not overwrite or target.is_dir or source.is_dir:
            raise NexusFileExistsError(f"destination exists: {dst}", path=dst)
        repo.delete(target.tenant_id, dst)
        self._quotas.charge(conn, paths.tenant_of(dst), storage=-target.size, files=-1)

    def _partitions_below(self, conn: Connection, path: str) -> list[str]:
        """Partitions that hold entries below ``path`` (several only for / and /tenants)."""
        if path in ("/", paths.TENANTS_ROOT):
            return [paths.SYSTEM_PARTITION, *TenantRepository(conn).iter_ids()]
        return [paths.partition_of(path)]

    def _has_entries(self, conn: Connection, partition: str, path: str) -> bool:
        repo = FileRepository(conn)
        if partition != paths.partition_of(path):  # a tenant below / or /tenants
            return True
        return repo.has_children(partition, path)

    def _open_blob(self, record: FileRecord, start: int = 0,
                   end: int | None = None) -> Iterator[bytes]:
        try:
            return self._blobs.open(record.tenant_id, record.digest or "", start, end)
        except BlobNotFound:
            raise InternalError(f"the content of {record.path} is missing from the blob "
                                "store; run `nexus fsck`") from None

    def _exists_or_raise(self, record: FileRecord, exist_ok: bool) -> FileInfo:
        if record.is_dir and exist_ok:
            return file_info(record)
        raise NexusFileExistsError(f"already exists: {record.path}", path=record.path)


def _refuse_document(path: str) -> None:
    tenant = paths.tenant_of(path)
    document = f"{paths.tenant_root(tenant)}/{TENANT_DOCUMENT}" if tenant else None
    if document is not None and (path == document or path.startswith(document + "/")):
        raise InvalidArgumentError(f"{document} is the tenant's live record, managed by the "
                                   "server: read or write it, nothing else")


def _document_info(path: str, content: bytes) -> FileInfo:
    now = iso_time(time.time())
    return FileInfo(path=path, name=TENANT_DOCUMENT, type="file", size=len(content),
                    etag=hashlib.sha256(content).hexdigest(), version=1, created_at=now,
                    modified_at=now)


def _batch_result(sent: str, outcome: FileInfo | NexusError) -> dict[str, Any]:
    if isinstance(outcome, NexusError):
        return {"path": sent, "ok": False,
                "error": {"code": outcome.code, "message": outcome.message}}
    return {"path": sent, "ok": True, "info": outcome.to_dict()}


def _parent(path: str) -> str:
    return paths.parent(path) or "/"


def _tenant_root_of(path: str) -> str | None:
    tenant = paths.tenant_of(path)
    return paths.tenant_root(tenant) if tenant else None


def _require_not_root(path: str) -> None:
    if path in ("/", paths.TENANTS_ROOT) or path == _tenant_root_of(path):
        raise NexusIsADirectoryError(f"{path} is a directory", path=path)


def _require_dir(record: FileRecord) -> None:
    if not record.is_dir:
        raise NexusNotADirectoryError(f"not a directory: {record.path}", path=record.path)


def _require_file(record: FileRecord) -> None:
    if record.is_dir:
        raise NexusIsADirectoryError(f"is a directory: {record.path}", path=record.path)


def _check_preconditions(current: FileRecord | None, path: str, if_match: str | None,
                         if_none_match: bool) -> None:
    if current is not None:
        _require_file(current)
    if if_none_match and current is not None:
        raise NexusFileExistsError(f"already exists: {path}", path=path)
    if if_match is not None and (current is None or current.digest != if_match):
        raise ConflictError(f"etag mismatch for {path}: the file changed since it was read",
                            path=path)

