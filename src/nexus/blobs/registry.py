"""Blob backends by URL scheme, imported lazily on first use."""

from __future__ import annotations

import importlib
from types import MappingProxyType
from urllib.parse import urlparse

from nexus.blobs.base import BlobStore

__all__ = ["blob_store_from_url", "known_schemes"]

_BACKENDS = {
    "file": "nexus.blobs.local.LocalBlobStore",
    "memory": "nexus.blobs.memory.MemoryBlobStore",
    "s3": "nexus.blobs.s3.S3BlobStore",
}
known_schemes = MappingProxyType(_BACKENDS)


def blob_store_from_url(url: str) -> BlobStore:
    """Build the blob store for ``url``: ``file:///srv/blobs``, a plain path,
    ``s3://BUCKET/PREFIX`` (AWS configuration from the environment), or ``memory://``."""
    parsed = urlparse(url)
    scheme = parsed.scheme or "file"
    if scheme not in _BACKENDS:
        raise ValueError(f"unknown blob store scheme {scheme!r}; known: {sorted(_BACKENDS)}")
    module_name, _, class_name = _BACKENDS[scheme].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    if scheme == "memory":
        return cls()
    if scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"an S3 blob URL names its bucket: s3://BUCKET/PREFIX, not {url!r}")
        return cls.from_url(url)
    return cls(parsed.path if parsed.scheme else url)
