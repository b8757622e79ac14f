"""Where quotas are enforced: every change to stored bytes, files or users is charged here,
inside the transaction that makes the change.

A charge is one conditional ``UPDATE`` of the tenant's counter row (see
:class:`~nexus.store.UsageRepository`), so concurrent writers serialise on that row and
a tenant can never exceed a hard limit, not even by one byte. Paths outside
``/tenants/<id>`` (the system partition) are not metered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection

from nexus.errors import QuotaExceededError
from nexus.service.tenants import limits_of, quota_error
from nexus.store import Database, FileRepository, TenantRepository, UsageRepository

__all__ = ["QuotaLedger", "Recount", "Room"]


@dataclass(frozen=True, slots=True)
class Room:
    """What a tenant has left for one upload, read before its bytes stream.

    ``replaced`` is the size of the file an overwrite replaces (its bytes are refunded
    by the charge, so they count as room). Advisory: between this read and the charge
    other writers may take the room, and the charge in the transaction decides.
    """

    limit: int | None
    used: int
    replaced: int = 0

    def refuse(self, size: int) -> None:
        """Raise the charge's ``QuotaExceededError`` if ``size`` bytes cannot fit."""
        if self.limit is not None and self.used - self.replaced + size > self.limit:
            raise quota_error("storage", self.limit, self.used, size - self.replaced)

    def metered(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks``, stopped with the charge's ``QuotaExceededError`` at the first chunk
        that takes the running size past the room: the rest is never pulled, and the
        blob store discards what it staged."""
        if self.limit is None:
            return chunks
        return self._meter(chunks, self.limit - self.used + self.replaced)

    def _meter(self, chunks: Iterator[bytes], room: int) -> Iterator[bytes]:
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > room:
                self.refuse(size)
            yield chunk


#: Unmetered (the system partition): no limit, nothing to check.
UNLIMITED = Room(None, 0)


@dataclass(frozen=True, slots=True)
class Recount:
    """A tenant's storage counters against what its partition stores (``fsck``)."""

    tenant_id: str
    counted_bytes: int
    counted_files: int
    stored_bytes: int
    stored_files: int
    repaired: bool = False

    @property
    def drift(self) -> bool:
        return (self.counted_bytes, self.counted_files) != (self.stored_bytes,
                                                             self.stored_files)


class QuotaLedger:
    """Charges and refunds usage against the tenant's effective limits."""

    def __init__(self, *, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def charge(self, conn: Connection, tenant_id: str | None, *, storage: int = 0,
               files: int = 0, users: int = 0) -> None:
        """Apply the deltas or raise ``QuotaExceededError`` (changing nothing)."""
        if tenant_id is None or (storage == 0 and files == 0 and users == 0):
            return
        limits = limits_of(TenantRepository(conn).get(tenant_id))
        usage = UsageRepository(conn)
        charged = usage.charge(tenant_id, storage=storage, files=files, users=users,
                               max_storage=limits.max_storage_bytes,
                               max_files=limits.max_files, max_users=limits.max_users,
                               now=self._clock())
        if charged is not None:
            return
        current = usage.get(tenant_id)
        if users > 0 and limits.max_users is not None \
                and current.users + users > limits.max_users:
            raise quota_error("users", limits.max_users, current.users, users)
        if files > 0 and limits.max_files is not None \
                and current.files + files > limits.max_files:
            raise quota_error("files", limits.max_files, current.files, files)
        if storage > 0 and limits.max_storage_bytes is not None:
            raise quota_error("storage", limits.max_storage_bytes, current.storage_bytes,
                              storage)
        # The counters moved between the refused charge and this read (or the tenant is
        # gone): refuse without guessing which limit it was.
        raise QuotaExceededError(f"quota exceeded for tenant {tenant_id}; retry",
                                 resource="unknown")

    def recount(self, conn: Connection, tenant_id: str, *, repair: bool = False
                ) -> Recount | None:
        """Compare the tenant's ``storage_bytes``/``files`` counters with the files it
        stores and, with ``repair``, set them to the stored totals (``nexus fsck
        --repair``). ``None`` if the tenant has no counter row.

        Run it in a write transaction: the counter row is locked first (a zero-delta
        update), so every writer that charged before has committed and every later one
        waits — the totals read next are exactly what the counters should say, even on a
        live server. A correction is applied as a charge without limits (the tenant
        already stores those bytes), through the same repository call as every charge.
        """
        usage = UsageRepository(conn)
        now = self._clock()
        counted = usage.charge(tenant_id, now=now)  # no deltas: only locks the row
        if counted is None:
            return None
        stored_bytes, stored_files = FileRepository(conn).partition_totals(tenant_id)
        result = Recount(tenant_id, counted.storage_bytes, counted.files, stored_bytes,
                         stored_files)
        if not repair or not result.drift:
            return result
        usage.charge(tenant_id, storage=stored_bytes - counted.storage_bytes,
                     files=stored_files - counted.files, now=now)
        return Recount(tenant_id, counted.storage_bytes, counted.files, stored_bytes,
                       stored_files, repaired=True)

    def room(self, conn: Connection, tenant_id: str | None, *, replaced: int = 0,
             new_files: int = 0) -> Room:
        """The tenant's room for an upload that replaces ``replaced`` bytes and adds
        ``new_files`` files, read on ``conn`` before any byte is stored. A file that
        cannot fit the files limit is refused here, before the upload starts. Advisory
        like :meth:`precheck_storage`: :meth:`charge` decides."""
        if tenant_id is None:
            return UNLIMITED
        limits = limits_of(TenantRepository(conn).get(tenant_id))
        if limits.max_storage_bytes is None and limits.max_files is None:
            return UNLIMITED
        current = UsageRepository(conn).get(tenant_id)
        if new_files > 0 and limits.max_files is not None \
                and current.files + new_files > limits.max_files:
            raise quota_error("files", limits.max_files, current.files, new_files)
        return Room(limits.max_storage_bytes, current.storage_bytes, replaced)

    def precheck_storage(self, tenant_id: str | None, size: int) -> None:
        """Refuse early an upload of known size that cannot fit, before its bytes are
        stored. Advisory only: :meth:`charge` decides."""
        if tenant_id is None or size <= 0:
            return
        with self._db.read() as conn:
            limits = limits_of(TenantRepository(conn).get(tenant_id))
            current = UsageRepository(conn).get(tenant_id)
        if limits.max_storage_bytes is not None \
                and current.storage_bytes + size > limits.max_storage_bytes:
            raise quota_error("storage", limits.max_storage_bytes, current.storage_bytes, size)

