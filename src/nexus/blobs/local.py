"""Blobs as files in a local (or shared network) directory."""

from __future__ import annotations

import errno
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from nexus.blobs.base import (
    CHUNK_SIZE,
    DEPLOYMENT_MARKER,
    BlobNotFound,
    BlobStore,
    StagedBlob,
)

__all__ = ["LocalBlobStore"]

_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


class _StagedFile(StagedBlob):
    def __init__(self, store: LocalBlobStore, temp: Path) -> None:
        self._store = store
        self._temp = temp

    def commit(self, key: str) -> int | None:
        target = self._store.root / key
        self._store._ensure_dir(target.parent)
        stamp = os.stat(self._temp).st_mtime_ns
        while True:
            try:
                # A hard link, not a rename: it fails if the key exists, so exactly one
                # of several writers of the same content creates it (and may withdraw it).
                os.link(self._temp, target)
            except FileExistsError:
                if _restamp(target):
                    self.discard()
                    return None
                continue  # removed just now (gc, a tenant's deletion, a withdraw): place ours
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                return self._replace(target)
            break
        self.discard()
        _fsync_dir(target.parent)
        return stamp

    def _replace(self, target: Path) -> None:
        # A filesystem without hard links: no way to know who created the key, so no
        # stamp (nothing is ever withdrawn; gc collects).
        if _restamp(target):
            self.discard()
            return None
        os.replace(self._temp, target)
        _fsync_dir(target.parent)
        return None

    def discard(self) -> None:
        try:
            self._temp.unlink()
        except FileNotFoundError:
            pass


class LocalBlobStore(BlobStore):
    """Files at ``<root>/<tenant>/<dd>/<digest>``, staged in ``<root>/.staging``.

    A blob is written to a temporary file, fsynced, renamed into place and its directory
    fsynced, so it is either complete and durable or absent. Nothing is created on disk
    before the first write (so opening a mistyped path to look at it leaves no trace).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._staging = self.root / ".staging"
        self._known_dirs: set[Path] = set()

    def _stage(self, chunks: Iterator[bytes]) -> StagedBlob:
        self._ensure_dir(self._staging)
        fd, name = tempfile.mkstemp(dir=self._staging, prefix="blob-")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return _StagedFile(self, temp)

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        try:
            handle = open(self.root / key, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return _read_range(handle, start, end)

    def _stat(self, key: str) -> tuple[int, float]:
        try:
            st = os.stat(self.root / key)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return st.st_size, st.st_mtime

    def _delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def _withdraw(self, key: str, stamp: int) -> bool:
        """The blob's modified time (in ns) is its stamp: every commit of an existing key
        moves it on (:func:`_restamp`). Checked, the blob renamed aside (from then on a
        writer of the same content places its own copy), checked again: only a blob no
        one stored again is removed. A commit landing between the first check and the
        rename is caught by the second and the blob is put back; during those
        microseconds a reader of it would find it missing."""
        target = self.root / key
        try:
            if os.stat(target).st_mtime_ns != stamp:
                return False
            self._ensure_dir(self._staging)
            aside = self._staging / f"withdrawn-{uuid.uuid4().hex}"
            os.rename(target, aside)
        except FileNotFoundError:
            return False
        try:
            if os.stat(aside).st_mtime_ns == stamp:
                return True
            try:
                os.link(aside, target)
            except FileExistsError:
                pass  # a writer placed its own copy meanwhile: the same bytes
            return False
        finally:
            aside.unlink(missing_ok=True)

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if not base.is_dir():
            return
        for shard in sorted(base.iterdir()):
            if shard.is_dir():
                for blob in shard.iterdir():
                    yield f"{prefix}{shard.name}/{blob.name}"

    def _iter_namespaces(self) -> Iterator[str]:
        if not self.root.is_dir():
            return iter([])
        return iter([p.name for p in self.root.iterdir() if p.is_dir() and p != self._staging])

    def _read_marker(self) -> bytes | None:
        try:
            return (self.root / DEPLOYMENT_MARKER).read_bytes()
        except FileNotFoundError:
            return None

    def _write_marker(self, data: bytes) -> None:
        self._ensure_dir(self.root)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=DEPLOYMENT_MARKER + ".")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(name, self.root / DEPLOYMENT_MARKER)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def stale_staging(self, older_than: float) -> list[Path]:
        """Staging files left by writers that died, older than ``older_than`` seconds."""
        if not self._staging.is_dir():
            return []
        cutoff = time.time() - older_than
        return [p for p in self._staging.iterdir() if p.stat().st_mtime < cutoff]

    def _ensure_dir(self, directory: Path) -> None:
        if directory in self._known_dirs:
            return
        missing = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            path.mkdir(exist_ok=True)
            _fsync_dir(path.parent)
        self._known_dirs.add(directory)


def _read_range(handle, start: int, end: int | None) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    with handle:
        handle.seek(start)
        remaining = None if end is None else max(0, end - start)
        while remaining is None or remaining > 0:
            size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = handle.read(size)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _restamp(target: Path) -> bool:
    """Refresh an existing blob's modified time — so a concurrent garbage collection sees
    it as freshly referenced, and a withdrawal as stored again — always to a later
    nanosecond than it had (hence a filesystem that keeps sub-second times). False if the
    blob is gone."""
    try:
        before = os.stat(target).st_mtime_ns
        now = max(time.time_ns(), before + 1)
        os.utime(target, ns=(now, now))
    except FileNotFoundError:
        return False
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
