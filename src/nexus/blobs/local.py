"""Blobs as files in a local (or shared network) directory.

A file's modified time is its stored time: re-storing existing content restamps it, and
garbage collection (:meth:`LocalBlobStore._collect`) renames a candidate aside, checks
its mtime and puts it back if a writer restamped it meanwhile, so a collection racing a
writer of the same content never removes what that writer relies on.

``OSError`` never leaves this module: a full disk, a read-only or unreadable directory or
an I/O error becomes :class:`~nexus.errors.UnavailableError` naming the path (a missing
blob is :class:`~nexus.blobs.BlobNotFound`). A full disk is not the tenant's quota: it is
the server's problem, so it is a 503, not a 413.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from nexus.blobs.base import (
    CHUNK_SIZE,
    DEPLOYMENT_MARKER,
    BlobNotFound,
    BlobStore,
    StagedBlob,
)
from nexus.errors import UnavailableError

__all__ = ["LocalBlobStore"]

_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_REFUSED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


@contextlib.contextmanager
def _os_errors(action: str, path: Path | str) -> Iterator[None]:
    """Translate the filesystem's errors where they enter (BlobNotFound passes)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise UnavailableError(
                f"blob store is out of space: cannot {action} {path} ({exc.strerror}); "
                "free space or grow the volume", reason="no_space") from exc
        if exc.errno in _REFUSED:
            raise UnavailableError(
                f"blob store refused to {action} {path}: {exc.strerror} — check the owner, "
                "mode and mount options of the blob directory",
                reason="permission_denied") from exc
        raise UnavailableError(f"blob store cannot {action} {path}: "
                               f"{exc.strerror or exc}", reason="io_error") from exc


class _StagedFile(StagedBlob):
    def __init__(self, store: LocalBlobStore, temp: Path) -> None:
        self._store = store
        self._temp = temp

    def commit(self, key: str) -> int | None:
        with _os_errors("store", self._store.root / key):
            return self._commit(key)

    def _commit(self, key: str) -> int | None:
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
        with _os_errors("stage a blob in", self._staging):
            self._ensure_dir(self._staging)
            fd, name = tempfile.mkstemp(dir=self._staging, prefix="blob-")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                # Only the file's own calls are translated: an error of the source (a
                # client's stream, a quota guard) reaches the caller as it was raised.
                for chunk in chunks:
                    with _os_errors("write", temp):
                        handle.write(chunk)
                with _os_errors("write", temp):
                    handle.flush()
                    os.fsync(handle.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return _StagedFile(self, temp)

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        path = self.root / key
        try:
            with _os_errors("read", path):
                handle = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except UnavailableError as exc:
            if isinstance(exc.__cause__, FileNotFoundError | NotADirectoryError):
                raise BlobNotFound(key) from None
            raise
        return _read_range(handle, path, start, end)

    def _stat(self, key: str) -> tuple[int, float]:
        try:
            with _os_errors("look up", self.root / key):
                st = os.stat(self.root / key)
        except UnavailableError as exc:
            if isinstance(exc.__cause__, FileNotFoundError | NotADirectoryError):
                raise BlobNotFound(key) from None
            raise
        return st.st_size, st.st_mtime

    def _delete(self, key: str) -> None:
        with _os_errors("delete", self.root / key):
            (self.root / key).unlink(missing_ok=True)

    def _withdraw(self, key: str, stamp: int) -> bool:
        """The blob's modified time (in ns) is its stamp: every commit of an existing key
        moves it on (:func:`_restamp`), so only a blob no one stored again is removed."""
        return self._remove_unless(key, lambda mtime_ns: mtime_ns != stamp)

    def _collect(self, key: str, before: float) -> bool:
        cutoff = int(before * 1_000_000_000)
        return self._remove_unless(key, lambda mtime_ns: mtime_ns >= cutoff)

    def _remove_unless(self, key: str, keep: Callable[[int], bool]) -> bool:
        """Remove ``key`` unless ``keep(its mtime in ns)``. Checked, renamed aside (from
        then on a writer of the same content places its own copy), checked again: a
        commit that restamped the blob between the first check and the rename is caught
        by the second and the blob is put back; during those microseconds a reader of
        it would find it missing."""
        target = self.root / key
        with _os_errors("remove", target):
            try:
                first = os.stat(target).st_mtime_ns
                if keep(first):
                    return False
                self._ensure_dir(self._staging)
                aside = self._staging / f"withdrawn-{uuid.uuid4().hex}"
                os.rename(target, aside)
            except FileNotFoundError:
                return False
            try:
                if os.stat(aside).st_mtime_ns == first:
                    return True
                try:
                    os.link(aside, target)
                except FileExistsError:
                    pass  # a writer placed its own copy meanwhile: the same bytes
                return False
            finally:
                aside.unlink(missing_ok=True)

    def delete_namespace(self, tenant_id: str) -> int:
        removed = super().delete_namespace(tenant_id)
        # Empty directories too, so the tenant is no longer among the namespaces; one a
        # writer has just put a blob into again is not empty and stays.
        base = self.root / tenant_id
        with _os_errors("delete", base):
            for shard in sorted(base.iterdir()) if base.is_dir() else []:
                with contextlib.suppress(OSError):
                    shard.rmdir()
                    self._known_dirs.discard(shard)
            with contextlib.suppress(OSError):
                base.rmdir()
                self._known_dirs.discard(base)
        return removed

    def _list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        base = self.root / prefix
        with _os_errors("list", base):
            if not base.is_dir():
                return
            for shard in sorted(base.iterdir()):
                if not shard.is_dir():
                    continue
                with os.scandir(shard) as entries:
                    for entry in entries:
                        try:
                            st = entry.stat()
                        except FileNotFoundError:
                            continue  # collected or withdrawn while we listed
                        yield f"{prefix}{shard.name}/{entry.name}", st.st_size, st.st_mtime

    def _iter_namespaces(self) -> Iterator[str]:
        with _os_errors("list", self.root):
            if not self.root.is_dir():
                return iter([])
            return iter([p.name for p in self.root.iterdir()
                         if p.is_dir() and p != self._staging])

    def _purge_staging(self, before: float, dry_run: bool) -> int:
        removed = 0
        with _os_errors("clean", self._staging):
            if not self._staging.is_dir():
                return 0
            for path in self._staging.iterdir():
                try:
                    if path.stat().st_mtime >= before:
                        continue
                    if not dry_run:
                        path.unlink()
                except FileNotFoundError:
                    continue  # its writer committed or discarded it just now
                removed += 1
        return removed

    def _read_marker(self) -> bytes | None:
        try:
            with _os_errors("read", self.root / DEPLOYMENT_MARKER):
                return (self.root / DEPLOYMENT_MARKER).read_bytes()
        except UnavailableError as exc:
            if isinstance(exc.__cause__, FileNotFoundError | NotADirectoryError):
                return None
            raise

    def _write_marker(self, data: bytes) -> None:
        with _os_errors("write", self.root / DEPLOYMENT_MARKER):
            self._write_marker_file(data)

    def _write_marker_file(self, data: bytes) -> None:
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


def _read_range(handle, path: Path, start: int, end: int | None) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    with handle:
        with _os_errors("read", path):
            handle.seek(start)
        remaining = None if end is None else max(0, end - start)
        while remaining is None or remaining > 0:
            size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            with _os_errors("read", path):
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
