"""Content-addressed blob stores: one interface, several backends."""

from __future__ import annotations

from nexus.blobs.base import (
    CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    StoredBlob,
    iter_chunks,
)
from nexus.blobs.local import LocalBlobStore
from nexus.blobs.memory import MemoryBlobStore
from nexus.blobs.registry import blob_store_from_url

__all__ = [
    "CHUNK_SIZE",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "LocalBlobStore",
    "MemoryBlobStore",
    "StoredBlob",
    "blob_store_from_url",
    "iter_chunks",
]
