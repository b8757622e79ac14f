"""Garbage collection and the consistency check (``nexus gc`` / ``nexus fsck``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nexus import paths
from nexus.blobs import BlobNotFound, BlobStore, LocalBlobStore
from nexus.store import Database, FileRepository, TenantRepository, UsageRepository
from nexus.store.audit import AuditRepository

__all__ = ["FsckReport", "GcReport", "Maintenance"]

#: A blob younger than this is never collected: its writer may not have committed yet.
DEFAULT_GRACE_SECONDS = 3600.0


@dataclass
class GcReport:
    """What a garbage collection removed."""

    blobs_removed: int = 0
    bytes_removed: int = 0
    staging_removed: int = 0
    audit_events_removed: int = 0


@dataclass
class FsckReport:
    """Problems found between metadata and blobs; ``ok`` when there are none."""

    files_checked: int = 0
    problems: list[str] = field(default_factory=list)
    unreferenced_blobs: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class Maintenance:
    """Operator tasks over the whole store. Administrators only (enforced by callers)."""

    def __init__(self, *, db: Database, blobs: BlobStore,
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._blobs = blobs
        self._clock = clock

    def partitions(self) -> list[str]:
        """System partition, every registered tenant, and any tenant that only has blobs."""
        with self._db.read() as conn:
            ids = list(TenantRepository(conn).iter_ids())
        known = {paths.SYSTEM_PARTITION, *ids}
        return sorted(known | set(self._blobs.namespaces()))

    def apply_retention(self) -> int:
        """Drop audit events older than each tenant's ``settings.data_retention_days``
        (tenants without the setting keep everything); returns how many."""
        removed = 0
        now = self._clock()
        with self._db.read() as conn:
            tenants = TenantRepository(conn)
            retained = [(r.tenant_id, r.settings.get("data_retention_days"))
                        for r in (tenants.get(t) for t in list(tenants.iter_ids())) if r]
        for tenant_id, days in retained:
            if isinstance(days, int | float) and not isinstance(days, bool) and days > 0:
                with self._db.write() as conn:
                    removed += AuditRepository(conn).prune(tenant_id, now - days * 86400)
        return removed

    def gc(self, *, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> GcReport:
        """Delete blobs no file references and that are older than ``grace_seconds``, and
        audit events past their tenant's retention."""
        report = GcReport(audit_events_removed=self.apply_retention())
        cutoff = self._clock() - grace_seconds
        for partition in self.partitions():
            with self._db.read() as conn:
                referenced = FileRepository(conn).digests(partition)
            for digest, mtime in list(self._blobs.digests(partition)):
                if digest in referenced or mtime >= cutoff:
                    continue
                try:
                    report.bytes_removed += self._blobs.size(partition, digest)
                except BlobNotFound:
                    continue
                self._blobs.delete(partition, digest)
                report.blobs_removed += 1
        if isinstance(self._blobs, LocalBlobStore):
            for stale in self._blobs.stale_staging(grace_seconds):
                stale.unlink(missing_ok=True)
                report.staging_removed += 1
        return report

    def _counter_problems(self, partition: str) -> list[str]:
        if partition == paths.SYSTEM_PARTITION:
            return []
        with self._db.read() as conn:
            if not TenantRepository(conn).exists(partition):
                return []
            stored_bytes, stored_files = FileRepository(conn).partition_totals(partition)
            usage = UsageRepository(conn).get(partition)
        problems = []
        if usage.storage_bytes != stored_bytes:
            problems.append(f"tenant {partition}: usage counter says {usage.storage_bytes} "
                            f"bytes, files hold {stored_bytes}")
        if usage.files != stored_files:
            problems.append(f"tenant {partition}: usage counter says {usage.files} files, "
                            f"{stored_files} stored")
        return problems

    def fsck(self) -> FsckReport:
        """Check that every file's blob exists with the recorded size, every entry has its
        parent directory, and each tenant's usage counters equal what it stores."""
        report = FsckReport()
        for partition in self.partitions():
            with self._db.read() as conn:
                repo = FileRepository(conn)
                rows = repo.files_with_digests(partition)
                orphans = repo.orphaned_rows(partition)
            report.problems += [f"{p}: parent directory is missing" for p in orphans]
            referenced = set()
            for path, digest, size in rows:
                report.files_checked += 1
                referenced.add(digest)
                try:
                    stored = self._blobs.size(partition, digest)
                except BlobNotFound:
                    report.problems.append(f"{path}: content blob {digest[:12]}… is missing")
                    continue
                if stored != size:
                    report.problems.append(
                        f"{path}: recorded size {size} but blob holds {stored} bytes")
            report.problems += self._counter_problems(partition)
            report.unreferenced_blobs += sum(
                1 for d, _ in self._blobs.digests(partition) if d not in referenced)
        return report
