"""Garbage collection and the consistency check (``nexus gc`` / ``nexus fsck``)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from nexus import paths
from nexus.blobs import BlobNotFound, BlobStore
from nexus.errors import DeploymentMismatchError
from nexus.service.audit import AuditLog
from nexus.service.quotas import QuotaLedger
from nexus.store import Database, FileRepository, TenantRepository, UsageRepository
from nexus.store.audit import AuditRepository
from nexus.store.deployment import DeploymentRepository
from nexus.types import Principal

__all__ = ["FsckProblem", "FsckReport", "GcReport", "Maintenance"]

#: A blob younger than this is never collected: its writer may not have committed yet.
DEFAULT_GRACE_SECONDS = 3600.0


@dataclass
class GcReport:
    """What a garbage collection removed — or, ``dry_run``, would remove (nothing was)."""

    blobs_removed: int = 0
    bytes_removed: int = 0
    staging_removed: int = 0
    audit_events_removed: int = 0
    dry_run: bool = False
    #: Per partition (tenant) with something to collect: ``{"blobs": n, "bytes": size}``.
    partitions: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "blobs_removed": self.blobs_removed,
                "bytes_removed": self.bytes_removed, "staging_removed": self.staging_removed,
                "audit_events_removed": self.audit_events_removed,
                "partitions": [{"tenant": name, **figures}
                               for name, figures in sorted(self.partitions.items())]}


#: Kinds of problem ``fsck`` reports; ``--repair`` fixes only the REPAIRABLE ones.
MISSING_BLOB = "missing_blob"          # a file row whose content blob is gone
SIZE_MISMATCH = "size_mismatch"        # the blob holds another number of bytes
CONTENT_MISMATCH = "content_mismatch"  # --deep: the blob's bytes do not hash to its key
NO_DIGEST = "no_digest"                # a file row without a content digest
MISSING_PARENT = "missing_parent"      # an entry whose parent directory row is missing
COUNTER_DRIFT = "counter_drift"        # usage counters differ from the stored files
NO_COUNTERS = "no_counters"            # a registered tenant without a counter row
AUDIT_CHAIN = "audit_chain"            # a gap, an altered event or a removed tail
REPAIRABLE = frozenset({MISSING_PARENT, COUNTER_DRIFT})


@dataclass(frozen=True, slots=True)
class FsckProblem:
    """One inconsistency: its kind, the partition (tenant) and path it concerns."""

    kind: str
    partition: str
    message: str
    path: str | None = None

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "tenant": self.partition, "path": self.path,
                "message": self.message}


@dataclass
class FsckReport:
    """What ``fsck`` found (``problems``), what ``repair`` changed (``repairs``) and what
    is still wrong afterwards (``remaining``; the same as ``problems`` without repair).
    ``ok`` when nothing remains."""

    files_checked: int = 0
    blobs_hashed: int = 0
    partitions_checked: int = 0
    audit_events_checked: int = 0
    unreferenced_blobs: int = 0
    problems: list[FsckProblem] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    remaining: list[FsckProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remaining

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files_checked": self.files_checked,
                "blobs_hashed": self.blobs_hashed,
                "partitions_checked": self.partitions_checked,
                "audit_events_checked": self.audit_events_checked,
                "unreferenced_blobs": self.unreferenced_blobs,
                "problems": [p.to_dict() for p in self.problems],
                "repairs": list(self.repairs),
                "remaining": [p.to_dict() for p in self.remaining]}


class Maintenance:
    """Operator tasks over the whole store. Administrators only (enforced by callers)."""

    def __init__(self, *, db: Database, blobs: BlobStore,
                 clock: Callable[[], float] = time.time, quotas: QuotaLedger | None = None,
                 audit: AuditLog | None = None) -> None:
        self._db = db
        self._blobs = blobs
        self._clock = clock
        self._quotas = quotas or QuotaLedger(db=db, clock=clock)
        self._audit = audit or AuditLog(db=db, clock=clock)

    def partitions(self) -> list[str]:
        """System partition, every registered tenant, and any tenant that only has blobs."""
        with self._db.read() as conn:
            ids = list(TenantRepository(conn).iter_ids())
        known = {paths.SYSTEM_PARTITION, *ids}
        return sorted(known | set(self._blobs.namespaces()))

    def apply_retention(self, *, dry_run: bool = False) -> int:
        """Drop audit events older than each tenant's ``settings.data_retention_days``
        (tenants without the setting keep everything); returns how many (``dry_run``: how
        many it would drop, dropping none)."""
        removed = 0
        now = self._clock()
        with self._db.read() as conn:
            tenants = TenantRepository(conn)
            retained = [(r.tenant_id, r.settings.get("data_retention_days"))
                        for r in (tenants.get(t) for t in list(tenants.iter_ids())) if r]
        for tenant_id, days in retained:
            if isinstance(days, int | float) and not isinstance(days, bool) and days > 0:
                if dry_run:
                    removed += self._expired_events(tenant_id, now - days * 86400)
                    continue
                cutoff = now - days * 86400
                removed += self._db.run(
                    lambda conn, t=tenant_id, c=cutoff: AuditRepository(conn).prune(t, c))
        return removed

    def _expired_events(self, tenant_id: str, before: float) -> int:
        count, after = 0, 0
        with self._db.read() as conn:
            while batch := AuditRepository(conn).events(tenant_id, after_seq=after,
                                                        until=before, limit=5000):
                count, after = count + len(batch), batch[-1].seq
        return count

    def gc(self, *, grace_seconds: float = DEFAULT_GRACE_SECONDS,
           dry_run: bool = False) -> GcReport:
        """Delete blobs no file references and that are older than ``grace_seconds``, and
        audit events past their tenant's retention; ``dry_run`` reports the same figures
        and deletes nothing.

        Refuses (:class:`DeploymentMismatchError`, before deleting anything) unless the
        blob store is marked for the database's deployment: judged against another
        deployment's database, every blob would look unreferenced.
        """
        self._require_one_deployment()
        report = GcReport(audit_events_removed=self.apply_retention(dry_run=dry_run),
                          dry_run=dry_run)
        cutoff = self._clock() - grace_seconds
        for partition in self.partitions():
            # Listing first, references after it: a blob listed as old that a writer
            # re-stores from now on is either referenced by the time the references are
            # read or young again when collect() checks it (nexus.blobs.base).
            old = [b for b in self._blobs.inventory(partition) if b.modified < cutoff]
            if not old:
                continue
            with self._db.read() as conn:
                referenced = FileRepository(conn).digests(partition)
            for blob in old:
                if blob.digest in referenced:
                    continue
                if not dry_run and not self._blobs.collect(partition, blob.digest, cutoff):
                    continue  # stored again (or removed) since the listing
                report.bytes_removed += blob.size
                report.blobs_removed += 1
                figures = report.partitions.setdefault(partition, {"blobs": 0, "bytes": 0})
                figures["blobs"] += 1
                figures["bytes"] += blob.size
        report.staging_removed = self._blobs.purge_staging(cutoff, dry_run=dry_run)
        return report

    def _require_one_deployment(self) -> None:
        with self._db.read() as conn:
            record = DeploymentRepository(conn).get()
        database_id = record.deployment_id if record else None
        blob_id = self._blobs.deployment_id()
        if database_id != blob_id:
            raise DeploymentMismatchError(
                f"refusing to collect garbage: the database belongs to deployment "
                f"{database_id or '(none)'} but the blob store to {blob_id or '(none)'} — "
                "its content would all look unreferenced. Nothing was deleted.")

    # -- fsck ----------------------------------------------------------------------------

    def fsck(self, *, repair: bool = False, deep: bool = False) -> FsckReport:
        """Check metadata against blobs, usage counters and the audit chains.

        Per partition (the system partition and every tenant): every file row's blob
        exists with the recorded size (``deep``: and its bytes hash to its digest), every
        entry has its parent directory row, the tenant's ``storage_bytes``/``files``
        counters equal the files it stores, and its audit log has gapless sequence
        numbers and an intact hash chain (:meth:`AuditRepository.verify`).

        ``repair`` fixes what is safe to fix — counters are recounted from the stored
        files (:meth:`QuotaLedger.recount`) and missing parent directories recreated,
        each audited as ``fsck.repair`` — then checks again. It never deletes user data:
        a row whose blob is missing or wrong stays (and is reported), an altered audit
        log stays (its breakage is the evidence), unreferenced blobs are left to ``gc``.
        """
        report = self._check(deep)
        report.remaining = list(report.problems)
        if not repair or not any(p.kind in REPAIRABLE for p in report.problems):
            return report
        for partition in sorted({p.partition for p in report.problems
                                 if p.kind == MISSING_PARENT}):
            report.repairs += self._recreate_parents(partition)
        for problem in report.problems:
            if problem.kind == COUNTER_DRIFT:
                report.repairs += self._recount(problem.partition)
        again = self._check(deep)
        report.remaining = again.problems
        report.unreferenced_blobs = again.unreferenced_blobs
        return report

    def _check(self, deep: bool) -> FsckReport:
        report = FsckReport()
        for partition in self.partitions():
            report.partitions_checked += 1
            self._check_files(partition, report, deep)
            report.problems += self._counter_problems(partition)
            with self._db.read() as conn:
                events, broken = AuditRepository(conn).verify(partition)
            if broken:  # a live server may append mid-walk (PostgreSQL): look once more
                with self._db.read() as conn:
                    events, broken = AuditRepository(conn).verify(partition)
            report.audit_events_checked += events
            report.problems += [FsckProblem(AUDIT_CHAIN, partition,
                                            f"audit log of {partition}: {message}")
                                for message in broken]
        return report

    def _check_files(self, partition: str, report: FsckReport, deep: bool) -> None:
        with self._db.read() as conn:
            repo = FileRepository(conn)
            rows = repo.files_with_digests(partition)
            orphans = repo.orphaned_rows(partition)
        report.problems += [FsckProblem(MISSING_PARENT, partition,
                                        f"{p}: parent directory is missing", p)
                            for p in orphans]
        referenced: set[str] = set()
        hashed: dict[str, str | None] = {}
        # One listing for the partition instead of one lookup per file (a HEAD each on
        # S3). Rows were read first, so every blob they name was stored before it ran.
        stored_sizes = {b.digest: b.size for b in self._blobs.inventory(partition)}
        for path, digest, size in rows:
            report.files_checked += 1
            if not digest:
                report.problems.append(FsckProblem(
                    NO_DIGEST, partition, f"{path}: file has no content digest", path))
                continue
            referenced.add(digest)
            stored = stored_sizes.get(digest)
            if stored is None:
                try:  # not listed: confirm with a lookup before calling it missing
                    stored = stored_sizes[digest] = self._blobs.size(partition, digest)
                except BlobNotFound:
                    report.problems.append(FsckProblem(
                        MISSING_BLOB, partition,
                        f"{path}: content blob {digest[:12]}… is missing", path))
                    continue
            if stored != size:
                report.problems.append(FsckProblem(
                    SIZE_MISMATCH, partition,
                    f"{path}: recorded size {size} but blob holds {stored} bytes", path))
                continue
            if deep:
                if digest not in hashed:
                    hashed[digest] = self._hash(partition, digest)
                    report.blobs_hashed += 1
                if hashed[digest] != digest:
                    report.problems.append(FsckProblem(
                        CONTENT_MISMATCH, partition,
                        f"{path}: blob {digest[:12]}… holds other bytes (SHA-256 "
                        f"{(hashed[digest] or 'unreadable')[:12]}…)", path))
        report.unreferenced_blobs += sum(1 for d in stored_sizes if d not in referenced)

    def _hash(self, partition: str, digest: str) -> str | None:
        hasher = hashlib.sha256()
        try:
            for chunk in self._blobs.open(partition, digest):
                hasher.update(chunk)
        except BlobNotFound:
            return None
        return hasher.hexdigest()

    def _counter_problems(self, partition: str) -> list[FsckProblem]:
        if partition == paths.SYSTEM_PARTITION:
            return []
        with self._db.read() as conn:
            if not TenantRepository(conn).exists(partition):
                return []
            stored_bytes, stored_files = FileRepository(conn).partition_totals(partition)
            usage = UsageRepository(conn).get(partition)
        if (usage.storage_bytes, usage.files) == (stored_bytes, stored_files):
            return []
        # PostgreSQL reads each statement at its own snapshot: confirm under the counter
        # row's lock before calling a live server's counters wrong (changes nothing).
        counted = self._db.run(lambda conn: self._quotas.recount(conn, partition))
        if counted is None:
            return [FsckProblem(NO_COUNTERS, partition,
                                f"tenant {partition}: has no usage counter row")]
        problems = []
        if counted.counted_bytes != counted.stored_bytes:
            problems.append(FsckProblem(
                COUNTER_DRIFT, partition,
                f"tenant {partition}: usage counter says {counted.counted_bytes} bytes, "
                f"files hold {counted.stored_bytes}"))
        if counted.counted_files != counted.stored_files:
            problems.append(FsckProblem(
                COUNTER_DRIFT, partition,
                f"tenant {partition}: usage counter says {counted.counted_files} files, "
                f"{counted.stored_files} stored"))
        return problems

    # -- repairs ---------------------------------------------------------------------------

    def _recount(self, partition: str) -> list[str]:
        def work(conn: Connection) -> list[str]:
            result = self._quotas.recount(conn, partition, repair=True)
            if result is None or not result.repaired:
                return []
            change = (f"tenant {partition}: usage counters set from "
                      f"{result.counted_bytes} bytes / {result.counted_files} files to "
                      f"{result.stored_bytes} bytes / {result.stored_files} files")
            self._audit.record(conn, _FSCK, "fsck.repair", paths.tenant_root(partition),
                               detail=change, tenant=partition)
            return [change]

        return self._db.run(work)

    def _recreate_parents(self, partition: str) -> list[str]:
        """Create the missing ancestor directory rows of every orphaned entry (a file in
        the way is left alone and stays reported)."""
        def work(conn: Connection) -> list[str]:
            made: list[str] = []
            repo = FileRepository(conn)
            for orphan in repo.orphaned_rows(partition):
                path = paths.parent(orphan)
                while path is not None and path not in ("/", paths.TENANTS_ROOT) \
                        and paths.partition_of(path) == partition:
                    existing = repo.get(partition, path)
                    if existing is not None:
                        break
                    repo.insert_directory(partition, path, paths.parent(path) or "/",
                                          self._clock())
                    self._audit.record(conn, _FSCK, "fsck.repair", path,
                                       detail="recreated missing parent directory",
                                       tenant=partition)
                    made.append(f"{path}: recreated missing parent directory")
                    path = paths.parent(path)
            return made

        return self._db.run(work)


#: The actor of ``fsck --repair`` events in the audit log.
_FSCK = Principal(user_id="nexus-fsck", tenant_id=None, is_admin=True)
