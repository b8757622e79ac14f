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
            store._blobs[key] = (data, time.time(), stamp)
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

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        return iter([k for k in self._blobs if k.startswith(prefix)])

    def _iter_namespaces(self) -> Iterator[str]:
        return iter({k.split("/", 1)[0] for k in self._blobs})

    def _read_marker(self) -> bytes | None:
        return self._marker

    def _write_marker(self, data: bytes) -> None:
        self._marker = bytes(data)
