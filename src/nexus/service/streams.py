"""Long streams stay within what allowed them: re-checks while the bytes flow.

A download or an upload is authorised when it begins, but may run for minutes. While it
runs it re-checks — at least every :attr:`StreamChecks.seconds` of a monotonic clock or
every :attr:`StreamChecks.span` bytes, whichever comes first — the key it came with
(revoked, expired), its tenant (suspended, deleted) and the permission on the path it
named (a share revoked or expired), and ends with the error a new request would get.

The re-check runs between chunks, never on the first one: a stream that ends within
``seconds`` and ``span`` costs two clock reads and no query, and a read of one chunk is
not wrapped at all.

Uploads are also metered against the tenant's room (:class:`~nexus.service.quotas.Room`)
as they arrive, so one that cannot fit stops at the first chunk past it and leaves no
bytes behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nexus.blobs import BlobInfo, BlobStore, iter_chunks
from nexus.blobs.base import Data
from nexus.errors import NexusFileNotFoundError
from nexus.service.keys import require_live_key
from nexus.service.quotas import UNLIMITED, QuotaLedger, Room
from nexus.service.tenant_state import TenantStates
from nexus.store import Database, FileRepository
from nexus.store.keys import KeyRepository
from nexus.types import Principal

if TYPE_CHECKING:
    from nexus.service.access import AccessGate, Action

__all__ = ["Recheck", "StreamChecks", "StreamGuard", "rechecked"]


@dataclass(frozen=True, slots=True)
class StreamChecks:
    """How often a stream in progress re-checks what allowed it."""

    seconds: float = 1.0
    span: int = 4 * 1024 * 1024
    #: Monotonic: a wall-clock step must neither skip nor force re-checks.
    clock: Callable[[], float] = time.monotonic


class Recheck:
    """The re-check schedule of one stream around ``check`` (which raises to end it)."""

    __slots__ = ("_check", "_checks", "_deadline", "_left", "checked")

    def __init__(self, check: Callable[[], None], checks: StreamChecks) -> None:
        self._check = check
        self._checks = checks
        self._deadline = checks.clock() + checks.seconds
        self._left = checks.span
        #: How many re-checks have run (a long stream's; tests read it).
        self.checked = 0

    def passing(self, size: int) -> None:
        """Before ``size`` more bytes pass: re-check if the time or the bytes are up."""
        self._left -= size
        if self._left < 0 or self._checks.clock() >= self._deadline:
            self.now()

    def finish(self) -> None:
        """At the end of an upload, before it commits: re-check a long one (one that
        was re-checked already, or outlived ``seconds``), so its last bytes are not
        accepted on a grant that lapsed while they arrived. A short upload commits on
        the check it began with, like any other request."""
        if self.checked or self._checks.clock() >= self._deadline:
            self.now()

    def now(self) -> None:
        self._check()
        self.checked += 1
        self._deadline = self._checks.clock() + self._checks.seconds
        self._left = self._checks.span


def rechecked(chunks: Iterator[bytes], recheck: Recheck) -> Iterator[bytes]:
    """``chunks``, with ``recheck`` consulted before each one is passed on."""
    for chunk in chunks:
        recheck.passing(len(chunk))
        yield chunk


class StreamGuard:
    """What :class:`~nexus.service.files.FileService` puts around its streams: the
    tenant's room before an upload, the metered and re-checked put, the re-check of a
    download. ``resolve`` is the file service's alias-resolving permission check."""

    def __init__(self, *, db: Database, blobs: BlobStore, quotas: QuotaLedger,
                 gate: AccessGate, states: TenantStates, clock: Callable[[], float],
                 resolve: Callable[[Principal, Action, str], str],
                 checks: StreamChecks) -> None:
        self._db = db
        self._blobs = blobs
        self._quotas = quotas
        self._gate = gate
        self._states = states
        self._clock = clock
        self._resolve = resolve
        self.checks = checks

    def room(self, partition: str, path: str, tenant: str | None, *,
             replaces: bool) -> Room:
        """The tenant's room for content at ``path`` (an overwrite's old bytes count as
        room when ``replaces``); a new file past the files limit is refused here."""
        if tenant is None:
            return UNLIMITED
        with self._db.read() as conn:
            existing = FileRepository(conn).get(partition, path)
            replaced = existing.size if replaces and existing is not None \
                and not existing.is_dir else 0
            return self._quotas.room(conn, tenant, replaced=replaced,
                                     new_files=1 if existing is None else 0)

    def store(self, principal: Principal, action: Action, sent: str, path: str,
              partition: str, data: Data, room: Room) -> BlobInfo:
        """Put ``data`` into the blob store within ``room``: bytes in memory are measured
        first; a stream is metered and re-checked as it arrives, and re-checked once more
        at its end if it was long (a refusal then withdraws the blob)."""
        if isinstance(data, bytes | bytearray | memoryview):
            room.refuse(len(data))
            return self._blobs.put(partition, data)
        recheck = self.recheck(principal, action, sent, path)
        blob = self._blobs.put(partition, rechecked(room.metered(iter_chunks(data)), recheck))
        try:
            recheck.finish()
        except BaseException:
            self._blobs.withdraw(partition, blob)
            raise
        return blob

    def recheck(self, principal: Principal, action: Action, sent: str,
                resolved: str) -> Recheck:
        """A stream's re-check, in the order a new request runs them: the key (revoked,
        expired), the tenant (suspended, deleted), then ``action`` on the path as sent —
        aliases resolved again, so a revoked or expired share ends the stream."""

        def check() -> None:
            now = self._clock()
            if principal.key_id is not None:
                with self._db.read() as conn:
                    record = KeyRepository(conn).get(principal.key_id)
                require_live_key(record, now, self._states.incarnation)
            tenant = principal.tenant_id
            if tenant is not None and not self._gate.is_system_admin(principal):
                self._states.require_open(tenant, principal.incarnation, now)
            if self._resolve(principal, action, sent) != resolved:
                # The alias now names another file (or none): a new request would not
                # reach the one being streamed.
                raise NexusFileNotFoundError(f"no such file: {sent}", path=sent)

        return Recheck(check, self.checks)
