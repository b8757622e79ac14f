"""The blob-store interface: content-addressed, tenant-namespaced, streamed.

A backend implements the ``_`` hooks; everything else (hashing, chunking, limits, the
derived helpers) lives here, so no backend computes or trusts a digest on its own.
Keys are ``<tenant>/<digest[:2]>/<digest>``: deduplication never crosses tenants, and a
tenant's blobs can be dropped without looking at anyone else's.

Garbage collection without local-disk facts
-------------------------------------------
A blob is written before the metadata row that references it commits, so an unreferenced
blob may be one that a writer is about to reference. Two rules keep collection safe on
every backend, a directory or an object store alike:

* **Storing content that is already there re-stores it.** :meth:`StagedBlob.commit` of
  an existing key moves its *stored time* (what :meth:`BlobStore.inventory` reports as
  ``modified``) to now — a local file's mtime is restamped, an S3 object is rewritten
  (the bytes were uploaded to staging anyway, so it costs no extra upload). A writer that
  relies on old content therefore makes it young again.
* **Collection is conditional.** ``gc`` lists a tenant's blobs once (sizes and stored
  times come from the listing: no HEAD per blob), reads the references after the listing,
  and removes each unreferenced candidate with :meth:`BlobStore.collect`, which removes
  it *only if it was not stored again since the cutoff*. On a directory and in memory
  that check and the removal are one atomic step (rename aside, check, put back); on S3
  the check is one HEAD just before the DELETE, so the one remaining window is that
  round trip, for content older than the grace period (see :mod:`nexus.blobs.s3`).

Staging storage left by writers that died is cleared by :meth:`BlobStore.purge_staging`,
which every backend implements.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from nexus.errors import InvalidArgumentError

__all__ = [
    "CHUNK_SIZE", "DEPLOYMENT_MARKER", "BlobInfo", "BlobNotFound", "BlobStore", "Data",
    "StagedBlob", "StoredBlob", "iter_chunks",
]

CHUNK_SIZE = 1024 * 1024
# A tenant id (see nexus.paths) or the system partition "_system"; never "." or "/".
_NAMESPACE = re.compile(r"[a-z0-9_][a-z0-9_-]{0,62}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_DEPLOYMENT_ID = re.compile(r"[0-9a-f]{32}")
#: The object that names the deployment a store belongs to (outside every namespace).
DEPLOYMENT_MARKER = ".nexus-deployment"
Data = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]


class BlobNotFound(KeyError):
    """No blob under that key. Above the blob layer this means corruption, not a user error."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What :meth:`BlobStore.put` stored: the SHA-256 hex digest and the size in bytes.

    ``stamp`` is set only when this put created the blob (no one had stored that content
    in the tenant): it is what :meth:`BlobStore.withdraw` needs to take the blob back.
    """

    digest: str
    size: int
    stamp: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """One entry of :meth:`BlobStore.inventory`: a blob's digest, its size in bytes and
    when it was last stored (created or re-stored), in seconds since the epoch."""

    digest: str
    size: int
    modified: float


class StagedBlob(ABC):
    """Content written by :meth:`BlobStore._stage` but not yet visible under a key."""

    @abstractmethod
    def commit(self, key: str) -> int | None:
        """Make the content durable under ``key``; idempotent if ``key`` already exists.

        Returns a stamp when this commit created ``key`` — exactly one of several
        concurrent commits of one key does — and ``None`` when the key existed. Storing
        content that exists changes its stamp (and refreshes its modified time), so
        :meth:`BlobStore._withdraw` can tell that another writer now relies on it.
        """

    @abstractmethod
    def discard(self) -> None:
        """Throw the staged content away."""


def iter_chunks(data: Data, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield ``data`` as byte chunks whatever form it came in; never reads it all at once."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start:start + chunk_size])
        return
    if isinstance(data, str):
        raise InvalidArgumentError("data must be bytes, not str: encode it first")
    read = getattr(data, "read", None)
    if read is not None:
        while chunk := read(chunk_size):
            if not isinstance(chunk, bytes | bytearray):
                raise InvalidArgumentError("data stream must be opened in binary mode")
            yield bytes(chunk)
        return
    if not isinstance(data, Iterable):
        raise InvalidArgumentError(
            f"data must be bytes or a binary stream, not {type(data).__name__}")
    for chunk in data:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidArgumentError("data iterator must yield bytes")
        if chunk:
            yield bytes(chunk)


def _counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
    served = 0
    try:
        for chunk in chunks:
            served += len(chunk)
            yield chunk
    finally:
        traffic.served(served)


class BlobTraffic:
    """Bytes stored into and read out of blob stores since the process started."""

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self._lock = threading.Lock()

    def stored(self, size: int) -> None:
        with self._lock:
            self.bytes_in += size

    def served(self, size: int) -> None:
        with self._lock:
            self.bytes_out += size


#: Process-wide, like the disk and network it measures (read by /metrics).
traffic = BlobTraffic()


class BlobStore(ABC):
    """Content-addressed storage. Subclasses implement the ``_`` hooks only."""

    def put(self, tenant_id: str, data: Data) -> BlobInfo:
        """Stream ``data`` into the store and return its digest and size.

        The blob is durable when this returns. Storing content that is already there is
        cheap and safe (same key, same bytes).
        """
        hasher = hashlib.sha256()
        size = 0

        def hashed() -> Iterator[bytes]:
            nonlocal size
            for chunk in iter_chunks(data):
                hasher.update(chunk)
                size += len(chunk)
                yield chunk

        # A source that raises part-way (a quota or permission guard, a broken upload)
        # leaves nothing: _stage removes what it had staged before re-raising.
        staged = self._stage(hashed())
        try:
            digest = hasher.hexdigest()
            stamp = staged.commit(self.key(tenant_id, digest))
        except BaseException:
            staged.discard()
            raise
        traffic.stored(size)
        return BlobInfo(digest, size, stamp)

    def withdraw(self, tenant_id: str, blob: BlobInfo) -> bool:
        """Remove a blob that :meth:`put` created and that turned out not to be wanted
        (its write was refused), unless the same content has been stored again since:
        that writer may be about to reference it. True if the blob was removed.

        Nothing is removed for a put that found the content already stored (``stamp``
        is ``None``), nor by a backend that cannot remove conditionally; such blobs are
        garbage collection's, after its grace period.
        """
        if blob.stamp is None:
            return False
        return self._withdraw(self.key(tenant_id, blob.digest), blob.stamp)

    def open(self, tenant_id: str, digest: str, start: int = 0,
             end: int | None = None) -> Iterator[bytes]:
        """Yield the bytes ``[start, end)`` of a blob in chunks. Raises :class:`BlobNotFound`."""
        return _counted(self._read(self.key(tenant_id, digest), start, end))

    def read_bytes(self, tenant_id: str, digest: str, start: int = 0,
                   end: int | None = None) -> bytes:
        """The bytes ``[start, end)`` of a blob, in memory (for small reads)."""
        buffer = io.BytesIO()
        for chunk in self.open(tenant_id, digest, start, end):
            buffer.write(chunk)
        return buffer.getvalue()

    def exists(self, tenant_id: str, digest: str) -> bool:
        try:
            self._stat(self.key(tenant_id, digest))
        except BlobNotFound:
            return False
        return True

    def size(self, tenant_id: str, digest: str) -> int:
        """Stored size of a blob. Raises :class:`BlobNotFound`."""
        return self._stat(self.key(tenant_id, digest))[0]

    def delete(self, tenant_id: str, digest: str) -> None:
        """Remove a blob; removing a missing blob is not an error."""
        self._delete(self.key(tenant_id, digest))

    def inventory(self, tenant_id: str) -> Iterator[StoredBlob]:
        """Every blob of a tenant with its size and stored time, from one listing (no
        per-blob lookup), in no particular order. A blob stored or removed while the
        listing runs may or may not appear."""
        self.key(tenant_id, "0" * 64)  # validates the namespace
        for key, size, modified in self._list(tenant_id + "/"):
            digest = key.rsplit("/", 1)[1]
            if _DIGEST.fullmatch(digest):
                yield StoredBlob(digest, size, modified)

    def digests(self, tenant_id: str) -> Iterator[tuple[str, float]]:
        """``(digest, stored time)`` of every blob of a tenant (see :meth:`inventory`)."""
        for blob in self.inventory(tenant_id):
            yield blob.digest, blob.modified

    def collect(self, tenant_id: str, digest: str, before: float) -> bool:
        """Garbage collection's removal: remove a blob unless it was stored (created or
        re-stored) at or after ``before`` (seconds since the epoch) — a writer may be
        about to reference it. True if removed; False if kept or already gone."""
        return self._collect(self.key(tenant_id, digest), before)

    def purge_staging(self, before: float, *, dry_run: bool = False) -> int:
        """Remove staged content (uploads in progress) begun before ``before`` — what
        writers that died left behind; returns how many (``dry_run``: would remove)."""
        return self._purge_staging(before, dry_run)

    def copy_from(self, source: BlobStore, src_tenant: str, dst_tenant: str,
                  digest: str) -> BlobInfo:
        """Copy one blob between tenants (or stores), streaming it through this process;
        a backend that can copy inside the service overrides this for its own blobs.
        Raises :class:`BlobNotFound`."""
        return self.put(dst_tenant, source.open(src_tenant, digest))

    def delete_namespace(self, tenant_id: str) -> int:
        """Remove every blob of a tenant (tenant deletion); returns how many."""
        keys = [self.key(tenant_id, blob.digest) for blob in self.inventory(tenant_id)]
        self._delete_many(keys)
        return len(keys)

    def namespaces(self) -> list[str]:
        """Every tenant (partition) that has blobs in this store."""
        return sorted(self._iter_namespaces())

    def holds_blobs(self) -> bool:
        """Whether any tenant has a blob here (a store in use, marked or not)."""
        return next(iter(self._iter_namespaces()), None) is not None

    def deployment_id(self) -> str | None:
        """The deployment this store was marked for (:meth:`mark_deployment`), or ``None``
        if it carries no mark. Raises :class:`InvalidArgumentError` for a mark that is
        not a deployment id (never guessed around: the store may be someone else's)."""
        raw = self._read_marker()
        if raw is None:
            return None
        text = raw.decode("ascii", errors="replace").strip()
        if not _DEPLOYMENT_ID.fullmatch(text):
            raise InvalidArgumentError(f"blob store marker {DEPLOYMENT_MARKER} holds "
                                       f"{text[:40]!r}, not a deployment id")
        return text

    def mark_deployment(self, deployment_id: str) -> None:
        """Record that this store belongs to ``deployment_id``; durable when this returns."""
        if not isinstance(deployment_id, str) or not _DEPLOYMENT_ID.fullmatch(deployment_id):
            raise InvalidArgumentError(f"not a deployment id: {deployment_id!r}")
        self._write_marker(deployment_id.encode("ascii") + b"\n")

    @staticmethod
    def key(tenant_id: str, digest: str) -> str:
        """``<tenant>/<dd>/<digest>``; both parts are validated, so no key leaves its
        tenant's namespace whatever a caller passes."""
        if not isinstance(tenant_id, str) or not _NAMESPACE.fullmatch(tenant_id):
            raise InvalidArgumentError(f"not a tenant namespace: {tenant_id!r}")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise InvalidArgumentError(f"not a SHA-256 hex digest: {digest!r}")
        return f"{tenant_id}/{digest[:2]}/{digest}"

    # -- hooks -------------------------------------------------------------------------

    @abstractmethod
    def _stage(self, chunks: Iterator[bytes]) -> StagedBlob:
        """Consume ``chunks`` into durable staging storage; nothing is visible yet."""

    @abstractmethod
    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        """Yield bytes ``[start, end)`` of ``key``; raise :class:`BlobNotFound` first if absent."""

    @abstractmethod
    def _stat(self, key: str) -> tuple[int, float]:
        """``(size, modified time)`` of ``key``; raise :class:`BlobNotFound`."""

    @abstractmethod
    def _delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    def _withdraw(self, key: str, stamp: int) -> bool:
        """Remove ``key`` only if its stamp is still ``stamp`` (no commit of it since);
        True if removed. A commit racing the removal must end with the key present (kept,
        or its own copy placed). The default removes nothing and says so: a backend
        without a conditional delete leaves unwanted blobs to garbage collection."""
        return False

    def _delete_many(self, keys: list[str]) -> None:
        """Remove every key of ``keys`` (missing ones are not an error); a backend with a
        batch delete overrides this."""
        for key in keys:
            self._delete(key)

    @abstractmethod
    def _collect(self, key: str, before: float) -> bool:
        """Remove ``key`` unless it was stored at or after ``before``; True if removed. A
        commit of ``key`` racing the removal must end with the key present."""

    @abstractmethod
    def _purge_staging(self, before: float, dry_run: bool) -> int:
        """Remove (``dry_run``: count) staged content begun before ``before``."""

    @abstractmethod
    def _list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """``(key, size, stored time)`` of every key starting with ``prefix``, from a
        listing (used by garbage collection, fsck and tenant deletion)."""

    @abstractmethod
    def _iter_namespaces(self) -> Iterator[str]:
        """The first key segment (tenant) of every stored blob, each once (none, not an
        error, where the store does not exist yet)."""

    @abstractmethod
    def _read_marker(self) -> bytes | None:
        """The bytes of the :data:`DEPLOYMENT_MARKER` object; ``None`` if there is none.
        Creates nothing."""

    @abstractmethod
    def _write_marker(self, data: bytes) -> None:
        """Replace the :data:`DEPLOYMENT_MARKER` object atomically and durably (creating
        the store's root if needed); it never appears among blob keys or namespaces."""
