"""Blobs in a dict, per instance: for tests and throwaway stores."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

from nexus.blobs.base import CHUNK_SIZE, BlobNotFound, BlobStore, StagedBlob

__all__ = ["MemoryBlobStore"]


class _StagedBytes(StagedBlob):
    def __init__(self, store: MemoryBlobStore, data: bytes) -> None:
        self._store = store
        self._data = data

    def commit(self, key: str) -> int | None:
        store = self._store
        with store._lock:
            stamp = next(store._stamps)
            created = key not in store._blobs
            data = self._data if created else store._blobs[key][0]
            # Re-storing moves the stored time on (never back), as every backend does:
            # garbage collection then sees the content as wanted again.
            previous = 0.0 if created else store._blobs[key][1]
            store._blobs[key] = (data, max(time.time(), previous + 1e-6), stamp)
        return stamp if created else None

    def discard(self) -> None:
        self._data = b""


class MemoryBlobStore(BlobStore):
    """Keeps blobs in this instance only; nothing is shared between instances."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, float, int]] = {}
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self._stamps = itertools.count(1)

    def _stage(self, chunks: Iterator[bytes]) -> StagedBlob:
        return _StagedBytes(self, b"".join(chunks))

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        if key not in self._blobs:
            raise BlobNotFound(key)
        data = self._blobs[key][0][start:end]
        return iter([data[i:i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)])

    def _stat(self, key: str) -> tuple[int, float]:
        try:
            data, mtime, _ = self._blobs[key]
        except KeyError:
            raise BlobNotFound(key) from None
        return len(data), mtime

    def _delete(self, key: str) -> None:
        self._blobs.pop(key, None)

    def _withdraw(self, key: str, stamp: int) -> bool:
        with self._lock:
            entry = self._blobs.get(key)
            if entry is None or entry[2] != stamp:
                return False
            del self._blobs[key]
            return True

    def _collect(self, key: str, before: float) -> bool:
        with self._lock:
            entry = self._blobs.get(key)
            if entry is None or entry[1] >= before:
                return False
            del self._blobs[key]
            return True

    def _purge_staging(self, before: float, dry_run: bool) -> int:
        return 0  # staged bytes live in the writer's frame: nothing outlives it

    def _list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        with self._lock:
            return iter([(k, len(v[0]), v[1]) for k, v in self._blobs.items()
                         if k.startswith(prefix)])

    def _iter_namespaces(self) -> Iterator[str]:
        with self._lock:
            return iter({k.split("/", 1)[0] for k in self._blobs})

    def _read_marker(self) -> bytes | None:
        return self._marker

    def _write_marker(self, data: bytes) -> None:
        self._marker = bytes(data)
