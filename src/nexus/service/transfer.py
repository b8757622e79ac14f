"""Tenant export and import: one ``.tar.gz`` that carries a tenant to any Nexus server.

Archive layout (``nexus-tenant-export/1``), written in this order so an import can stream::

    manifest.json   format, tenant id, export time, every entry's path, type, size, SHA-256
    tenant.json     the record: name, plan, status, limit overrides, settings, extra fields
    users.json      user ids (keys are never exported: users get new keys after import)
    tuples.json     permission tuples of the tenant's store, with API-level subject names
    shares.json     shares out of and into the tenant (outgoing ones are re-created)
    audit.json      the tenant's audit log (for the record; the importing server starts a
                    new chain that begins with the import)
    model.fga       the tenant's own authorization model (only if it wrote one)
    files/<path>    the content, paths relative to /tenants/<id>

An archive is untrusted input: an import passes every byte through the validators of the
live API before anything is written (see :meth:`TransferService.import_tenant`), streams
content straight into the target tenant's blob namespace under its quota, and commits the
tenant — record, rows, counters, users, model, tuples, shares, audit event — in one
transaction. A refused import leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection

from nexus import paths
from nexus.authz import RelationTuple
from nexus.blobs import BlobInfo, BlobStore
from nexus.errors import (
    ConflictError,
    InvalidArgumentError,
    NexusError,
    NexusFileExistsError,
    NexusFileNotFoundError,
)
from nexus.service.access import AccessGate
from nexus.service.archive import FORMAT, Entry, ImportPlan, decode_text, plan_import
from nexus.service.audit import AuditLog
from nexus.service.files import FileService
from nexus.service.incarnations import decode_tuple, encode_id, encode_subject, memoised
from nexus.service.permissions import RevisionTracker
from nexus.service.quotas import QuotaLedger
from nexus.service.shares import record_share
from nexus.service.tenants import (
    STANDARD_DIRECTORIES,
    TenantService,
    quota_error,
    register_tenant,
)
from nexus.store import (
    Database,
    FileRepository,
    TenantRepository,
)
from nexus.store.audit import AuditRepository
from nexus.store.keys import KeyRepository
from nexus.store.shares import ShareRepository
from nexus.store.tuples import ModelRepository, TupleRepository
from nexus.types import Principal

__all__ = ["FORMAT", "MAX_AUDIT_BYTES", "MAX_METADATA_BYTES", "TransferService"]

#: The most an import reads of each parsed metadata member (``manifest.json``,
#: ``tenant.json``, ``users.json``, ``tuples.json``, ``shares.json``, ``model.fga``):
#: checked on the tar header and again while reading. Export refuses to write more.
MAX_METADATA_BYTES = 16 * 1024 * 1024
#: ``audit.json`` is not restored: an import reads through it in chunks, never holding it.
MAX_AUDIT_BYTES = 1024 * 1024 * 1024
_MAX_HEADER_BYTES = 64 * 1024  # a pax or GNU long-name header tarfile would buffer
_CHUNK = 256 * 1024
_PAGE = 1000
_METADATA = ("manifest.json", "tenant.json", "users.json", "tuples.json", "shares.json",
             "audit.json")
_MODEL = "model.fga"
_EXTENSION_HEADERS = frozenset({tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK,
                                tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE})
_MEMBER_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE})


class _ChunkReader(io.RawIOBase):
    """A file-like view of a chunk iterator (what ``tarfile`` wants to read from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses, before ``tarfile`` buffers anything, extension headers larger than
    :data:`_MAX_HEADER_BYTES` (a pax header declaring 1 GiB would be read into memory
    whole) and every member type but plain files and directories (links, devices and
    sparse files have no place in an archive of ours)."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENSION_HEADERS:
            if self.size > _MAX_HEADER_BYTES:
                raise InvalidArgumentError(
                    f"archive has a {self.size}-byte extension header; at most "
                    f"{_MAX_HEADER_BYTES} bytes are accepted")
        elif self.type not in _MEMBER_TYPES:
            raise InvalidArgumentError(f"archive member {self.name[:200]!r} is not a file or "
                                       "a directory (links and devices are refused)")
        return super()._proc_member(tar)  # type: ignore[misc]


class TransferService:
    """export_tenant / import_tenant (system administrator only)."""

    def __init__(self, *, db: Database, blobs: BlobStore, files: FileService,
                 tenants: TenantService, revisions: RevisionTracker, spool_dir: Path,
                 quotas: QuotaLedger, audit: AuditLog, gate: AccessGate,
                 clock: Callable[[], float] = time.time) -> None:
        self._gate = gate
        self._db = db
        self._blobs = blobs
        self._files = files
        self._tenants = tenants
        self._revisions = revisions
        self._spool = spool_dir
        self._quotas = quotas
        self._audit = audit
        self._clock = clock
        self._importing: set[str] = set()
        self._lock = threading.Lock()

    # -- export --------------------------------------------------------------------------

    def export_tenant(self, principal: Principal, tenant_id: str,
                      path: str | None = None) -> dict[str, Any]:
        """Write the tenant's archive to ``path`` (default
        ``/exports/<id>-<YYYYMMDD>.tar.gz``, in the system partition) and describe it."""
        self._gate.require_system_admin(principal, "exports and imports tenants")
        paths.validate_tenant_id(tenant_id)
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        target = paths.normalize(path or f"/exports/{tenant_id}-{stamp}.tar.gz")
        if paths.tenant_of(target) is not None:
            raise InvalidArgumentError("exports are stored outside /tenants (e.g. /exports/…)")
        self._spool.mkdir(parents=True, exist_ok=True)
        self._audit.flush()  # the archive's audit.json holds this process's reads so far
        fd, name = tempfile.mkstemp(dir=self._spool, prefix="export-", suffix=".tar.gz")
        os.close(fd)
        try:
            summary = self._write_archive(tenant_id, Path(name))
            with open(name, "rb") as archive:
                info = self._files.write(principal, target, archive)
        finally:
            Path(name).unlink(missing_ok=True)
        return {"path": target, "archive_bytes": info.size, "archive_sha256": info.etag,
                **summary}

    def _write_archive(self, tenant_id: str, out: Path) -> dict[str, Any]:
        root = paths.tenant_root(tenant_id)
        now = self._clock()
        with self._db.read() as conn:
            record = TenantRepository(conn).get(tenant_id)
            if record is None:
                raise NexusFileNotFoundError(f"no tenant {tenant_id!r}")
            token_of = memoised(TenantRepository(conn).incarnation)
            rows = _all_rows(FileRepository(conn), tenant_id)
            users = KeyRepository(conn).users(tenant_id)
            stored = TupleRepository(conn).list(tenant_id, now=now, include_expired=False,
                                                limit=10_000_000)
            # API-level names (no incarnation tokens: they mean nothing on another
            # server); a tuple naming a dead incarnation grants nothing and is left out.
            tuples = [t for t in (decode_tuple(s.to_dict(), token_of) for s in stored)
                      if t is not None]
            shares = ShareRepository(conn)
            share_rows = [{k: v for k, v in s.to_dict().items() if k != "target_incarnation"}
                          for s in shares.outgoing(tenant_id) + shares.incoming(tenant_id)]
            model = ModelRepository(conn).latest(tenant_id)
            audit = AuditRepository(conn)
            events: list[dict[str, Any]] = []
            while batch := audit.events(tenant_id, after_seq=len(events), limit=5000):
                events.extend(e.to_dict() for e in batch)
        entries = [{"path": _relative(r.path, root), "type": r.kind, "size": r.size,
                    "sha256": r.digest} for r in rows if r.path != root]
        manifest = {"format": FORMAT, "tenant_id": tenant_id,
                    "exported_at": datetime.now(UTC).isoformat(), "files": entries}
        tenant_doc = {"name": record.name, "plan": record.plan, "status": record.status,
                      "status_reason": record.status_reason,
                      "limit_overrides": record.limit_overrides, "settings": record.settings,
                      "extra": record.extra, "trial_ends_at": record.trial_ends_at,
                      "created_at": record.created_at}
        # Level 1: ~10x faster than the default 9 on text for a ~30 % larger archive, and
        # no worse on already-compressed content (most of what tenants store).
        with tarfile.open(out, "w:gz", compresslevel=1) as tar:
            _add_json(tar, "manifest.json", manifest)
            _add_json(tar, "tenant.json", tenant_doc)
            _add_json(tar, "users.json", users)
            _add_json(tar, "tuples.json", tuples)
            _add_json(tar, "shares.json", share_rows)
            _add_json(tar, "audit.json", events, limit=MAX_AUDIT_BYTES)
            if model is not None:
                _add_member(tar, _MODEL, model[1].encode(), limit=MAX_METADATA_BYTES)
            for row in rows:
                if row.path == root:
                    continue
                member = tarfile.TarInfo("files/" + _relative(row.path, root))
                member.mtime = int(row.modified_at)
                if row.is_dir:
                    member.type, member.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(member)
                    continue
                member.size, member.mode = row.size, 0o644
                chunks = self._blobs.open(tenant_id, row.digest or "")
                tar.addfile(member, _ChunkReader(chunks))
        files = [e for e in entries if e["type"] == "file"]
        return {"tenant_id": tenant_id, "files": len(files),
                "directories": len(entries) - len(files),
                "bytes": sum(e["size"] for e in files), "users": len(users),
                "tuples": len(tuples), "shares": len(share_rows),
                "audit_events": len(events)}

    # -- import --------------------------------------------------------------------------

    def import_tenant(self, principal: Principal, archive: str | bytes,
                      tenant_id: str | None = None) -> dict[str, Any]:
        """Recreate a tenant from an archive (a Nexus path such as
        ``/exports/acme-20261127.tar.gz``, or the archive's bytes), optionally under a new
        ``tenant_id``. The tenant must not exist. Users come back without keys.

        Every member is validated like live API input (paths, hashes, sizes, record
        fields, user ids, tuples against the archive's model, quotas); any refusal —
        ``InvalidArgumentError`` naming the member, ``QuotaExceededError``,
        ``NexusFileExistsError`` — leaves nothing written."""
        self._gate.require_system_admin(principal, "exports and imports tenants")
        if tenant_id is not None:
            paths.validate_tenant_id(tenant_id)
        if isinstance(archive, str):
            stream: IO[bytes] = _ChunkReader(self._files.open_read(principal, archive).chunks)
        elif isinstance(archive, bytes | bytearray):
            stream = io.BytesIO(bytes(archive))
        else:
            raise InvalidArgumentError("archive must be a Nexus path or the archive's bytes")
        try:
            with tarfile.open(fileobj=stream, mode="r|gz", tarinfo=_GuardedTarInfo) as tar:
                return self._restore(principal, tar, tenant_id)
        except NexusError:
            raise
        except (tarfile.TarError, EOFError, OSError, ValueError, KeyError) as exc:
            raise InvalidArgumentError(f"not a readable tenant archive: {exc}") from None

    def _restore(self, principal: Principal, tar: tarfile.TarFile,
                 new_id: str | None) -> dict[str, Any]:
        members = iter(tar)
        raw: dict[str, bytes] = {}
        for name in _METADATA:
            member = next(members, None)
            if member is None or member.name != name:
                raise InvalidArgumentError(f"archive does not start with {', '.join(_METADATA)}"
                                           f" (expected {name} next)")
            if name == "audit.json":  # not restored: read through, never held
                _read_member(tar, member, MAX_AUDIT_BYTES, keep=False)
            else:
                raw[name] = _read_member(tar, member, MAX_METADATA_BYTES)
        member = next(members, None)
        model = None
        if member is not None and member.name == _MODEL:
            model = decode_text(_MODEL, _read_member(tar, member, MAX_METADATA_BYTES))
            member = next(members, None)
        plan = plan_import(raw, model, new_id, self._clock())
        with self._reserved(plan.tenant):
            with self._db.read() as conn:
                if TenantRepository(conn).exists(plan.tenant):
                    raise NexusFileExistsError(f"tenant {plan.tenant!r} already exists; "
                                               "delete it or import under another tenant_id")
            _precheck_quota(plan)
            stored: dict[str, BlobInfo] = {}
            try:
                self._stream_content(tar, member, members, plan, stored)
                return self._commit(principal, plan)
            except BaseException:
                self._discard(plan.tenant, stored)
                raise

    @contextmanager
    def _reserved(self, tenant: str) -> Iterator[None]:
        # Two imports of one id in this process would share blobs until one commits.
        with self._lock:
            if tenant in self._importing:
                raise ConflictError(f"tenant {tenant!r} is being imported right now")
            self._importing.add(tenant)
        try:
            yield
        finally:
            with self._lock:
                self._importing.discard(tenant)

    def _stream_content(self, tar: tarfile.TarFile, member: tarfile.TarInfo | None,
                        members: Iterator[tarfile.TarInfo], plan: ImportPlan,
                        stored: dict[str, BlobInfo]) -> None:
        """Each content member into the target's blob namespace, exactly as the manifest
        lists it, hashed and counted against its size and the storage quota as it
        streams. Content this import stored already is hashed, not stored again (a
        second put would restamp the blob, and a refused import could then no longer
        withdraw it)."""
        pending = dict(plan.entries)
        while member is not None:
            name = member.name
            if not name.startswith("files/") or name[len("files/"):] not in pending:
                raise InvalidArgumentError(
                    f"archive member {name[:200]!r} is not listed in the manifest "
                    "(or is listed twice)")
            entry = pending.pop(name[len("files/"):])
            if entry.kind == "directory":
                if not member.isdir():
                    raise InvalidArgumentError(f"archive member {name!r} is listed as a "
                                               "directory but is not one")
                member = next(members, None)
                continue
            if not member.isfile():
                raise InvalidArgumentError(f"archive member {name!r} is listed as a file but "
                                           "is not one")
            if member.size != entry.size:
                raise InvalidArgumentError(f"archive member {name!r} has {member.size} bytes; "
                                           f"the manifest says {entry.size}")
            handle = tar.extractfile(member)
            if handle is None:
                raise InvalidArgumentError(f"archive member {name!r} has no content")
            if entry.sha256 in stored:
                blob = _hashed(_metered(handle, entry, plan))
            else:
                blob = self._blobs.put(plan.tenant, _metered(handle, entry, plan))
                stored[blob.digest] = blob
            if blob.size != entry.size:
                raise InvalidArgumentError(f"archive member {name!r} has {blob.size} bytes; "
                                           f"the manifest says {entry.size}")
            if blob.digest != entry.sha256:
                raise InvalidArgumentError(f"archive member {name!r}: content does not match "
                                           "the manifest's SHA-256")
            plan.digests[entry.path] = blob.digest
            plan.stored_bytes += blob.size
            member = next(members, None)
        if pending:
            missing = sorted(pending)[0]
            raise InvalidArgumentError(f"archive is missing {len(pending)} entries of its "
                                       f"manifest, e.g. files/{missing}")

    def _commit(self, principal: Principal, plan: ImportPlan) -> dict[str, Any]:
        """The tenant and everything in it, in one transaction."""
        tenant, record = plan.tenant, plan.record
        root = paths.tenant_root(tenant)
        now = self._clock()
        files = [e for e in plan.entries.values() if e.kind == "file"]

        def _work(conn: Connection) -> Any:
            if register_tenant(conn, tenant, now, name=record["name"], plan=record["plan"],
                               status=record["status"],
                               limit_overrides=record["limit_overrides"],
                               settings=record["settings"],
                               trial_ends_at=record["trial_ends_at"]) is None:
                raise NexusFileExistsError(f"tenant {tenant!r} already exists")
            tenants = TenantRepository(conn)
            tenants.update(tenant, extra=record["extra"],
                           status_reason=record["status_reason"])
            _insert_rows(FileRepository(conn), plan, now)
            self._quotas.charge(conn, tenant, storage=sum(e.size for e in files),
                                files=len(files), users=len(plan.users))
            keys = KeyRepository(conn)
            for user_id, created_at in plan.users.items():
                keys.add_user(tenant, user_id, now if created_at is None else created_at)
            if plan.model is not None:
                ModelRepository(conn).add(tenant, uuid.uuid4().hex, plan.model, now)
            restored = _write_tuples(conn, plan, tenants.incarnation, now)
            revision = TupleRepository(conn).bump_revision(tenant)
            self._audit.record(conn, principal, "tenant.import", root,
                               detail=f"from {plan.old_id}: {len(files)} files, "
                                      f"{len(plan.users)} users, {restored} tuples")
            return restored, revision

        restored, revision = self._db.run(_work)
        self._revisions.advanced(tenant, revision)
        return {"tenant_id": tenant, "files": len(files), "users": len(plan.users),
                "tuples": restored}

    def _discard(self, tenant: str, stored: dict[str, BlobInfo]) -> None:
        """Withdraw the blobs a refused or failed import created — unless the tenant
        exists now (this import's commit may have landed before its error, or the tenant
        came into being by other means: rows may reference them, and gc removes
        orphans). Even then a blob stored again since by another writer stays."""
        if not stored:
            return
        with self._db.read() as conn:
            if TenantRepository(conn).exists(tenant):
                return
        for blob in stored.values():
            self._blobs.withdraw(tenant, blob)


def _write_tuples(conn: Any, plan: ImportPlan, token_of: Callable[[str], str | None],
                  now: float) -> int:
    """Store the plan's tuples with incarnation-bound ids, and their share records.
    A share into a tenant this server does not have is not re-created."""
    tuples = TupleRepository(conn)
    restored = 0
    for item in plan.tuples:
        t = item.tuple
        target_token = None
        if item.share is not None:
            target_token = token_of(item.share.target)
            if target_token is None:
                continue
        subject = encode_subject((t.subject_type, t.subject_id, t.subject_relation), token_of)
        obj_id = encode_id(t.object_type, t.object_id, token_of)
        stored = tuples.write(plan.tenant, RelationTuple(t.object_type, obj_id, t.relation,
                                                         *subject, t.expires_at),
                              now=now, created_by=item.created_by)
        if item.share is not None:
            record_share(conn, source=plan.tenant, target=item.share.target,
                         path=item.share.path, permission=item.share.permission,
                         tuple_id=stored.tuple_id, now=now, expires_at=t.expires_at,
                         created_by=item.share.created_by, target_incarnation=target_token)
        restored += 1
    return restored


def _insert_rows(repo: FileRepository, plan: ImportPlan, now: float) -> None:
    """Directories and files straight into the target's partition (no alias, no write
    path in between), with missing parents and the standard folders created."""
    tenant = plan.tenant
    root = paths.tenant_root(tenant)
    made = {root}
    wanted = {f"{root}/{sub}" for sub in STANDARD_DIRECTORIES
              if sub not in plan.entries} | {f"{root}/{e.path}" for e in
                                             plan.entries.values() if e.kind == "directory"}
    for entry in sorted(plan.entries.values(), key=lambda e: e.path):
        full = f"{root}/{entry.path}"
        for ancestor in reversed(paths.ancestors(full)):
            if ancestor.startswith(root + "/") and ancestor not in made:
                repo.insert_directory(tenant, ancestor, paths.parent(ancestor) or "/", now)
                made.add(ancestor)
        if entry.kind == "file":
            repo.insert_file(tenant, full, paths.parent(full) or "/", size=entry.size,
                             digest=plan.digests[entry.path], now=now)
        elif full not in made:
            repo.insert_directory(tenant, full, paths.parent(full) or "/", now)
            made.add(full)
    for directory in sorted(wanted - made):
        repo.insert_directory(tenant, directory, paths.parent(directory) or "/", now)


def _precheck_quota(plan: ImportPlan) -> None:
    """Refuse, before any content is stored, an archive whose declared sizes cannot fit
    the tenant's limits (the charge at commit decides; this only refuses early)."""
    limits = plan.limits
    files = [e for e in plan.entries.values() if e.kind == "file"]
    declared = sum(e.size for e in files)
    if limits.max_users is not None and len(plan.users) > limits.max_users:
        raise quota_error("users", limits.max_users, 0, len(plan.users))
    if limits.max_files is not None and len(files) > limits.max_files:
        raise quota_error("files", limits.max_files, 0, len(files))
    if limits.max_storage_bytes is not None and declared > limits.max_storage_bytes:
        raise quota_error("storage", limits.max_storage_bytes, 0, declared)


def _metered(handle: IO[bytes], entry: Entry, plan: ImportPlan) -> Iterator[bytes]:
    """The member's bytes, stopped as soon as they exceed its declared size or the
    storage the tenant has left (the blob store then discards the partial blob)."""
    limit = plan.limits.max_storage_bytes
    seen = 0
    while chunk := handle.read(_CHUNK):
        seen += len(chunk)
        if seen > entry.size:
            raise InvalidArgumentError(f"archive member {entry.member!r} has more bytes than "
                                       f"the manifest's {entry.size}")
        if limit is not None and plan.stored_bytes + seen > limit:
            raise quota_error("storage", limit, plan.stored_bytes, entry.size)
        yield chunk


def _hashed(chunks: Iterator[bytes]) -> BlobInfo:
    """Digest and size of ``chunks``, storing nothing."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in chunks:
        hasher.update(chunk)
        size += len(chunk)
    return BlobInfo(hasher.hexdigest(), size)


# -- reading members ---------------------------------------------------------------------


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, *,
                 keep: bool = True) -> bytes:
    """A metadata member's bytes, at most ``limit`` (tar header and actual bytes)."""
    if not member.isfile():
        raise InvalidArgumentError(f"archive member {member.name!r} must be a file")
    if member.size > limit:
        raise InvalidArgumentError(f"archive member {member.name!r} declares {member.size} "
                                   f"bytes; at most {limit} are accepted")
    handle = tar.extractfile(member)
    if handle is None:
        raise InvalidArgumentError(f"archive member {member.name!r} has no content")
    buffer = bytearray()
    seen = 0
    while chunk := handle.read(_CHUNK):
        seen += len(chunk)
        if seen > limit:
            raise InvalidArgumentError(f"archive member {member.name!r} is larger than "
                                       f"{limit} bytes")
        if keep:
            buffer += chunk
    return bytes(buffer)


# -- helpers -----------------------------------------------------------------------------


def _all_rows(repo: FileRepository, tenant_id: str) -> list[Any]:
    rows: list[Any] = []
    after = None
    while batch := repo.subtree(tenant_id, paths.TENANTS_ROOT, after=after, limit=_PAGE):
        rows.extend(batch)
        after = batch[-1].path
    return rows


def _relative(path: str, root: str) -> str:
    return path[len(root) + 1:]


def _add_json(tar: tarfile.TarFile, name: str, value: Any, *,
              limit: int = MAX_METADATA_BYTES) -> None:
    _add_member(tar, name, json.dumps(value, separators=(",", ":"), default=str).encode(),
                limit=limit)


def _add_member(tar: tarfile.TarFile, name: str, data: bytes, *, limit: int) -> None:
    if len(data) > limit:
        raise ConflictError(f"the tenant's {name} would be {len(data)} bytes, more than an "
                            f"import accepts ({limit}); the tenant is too large to export")
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = len(data), 0o644, int(time.time())
    tar.addfile(member, io.BytesIO(data))

