"""``nexus://``: Nexus as an fsspec filesystem, for pandas, pyarrow, DuckDB and friends.

Registered through the ``fsspec.specs`` entry point, so nothing needs importing::

    fs = fsspec.filesystem("nexus", url="http://localhost:8080", api_key=key)
    fs.ls("/tenants/acme")
    pandas.read_csv("nexus:///tenants/acme/data.csv",
                    storage_options={"url": "http://localhost:8080", "api_key": key})

The options are :func:`nexus.connect`'s configuration (``url``/``api_key``/``timeout``,
or ``data_dir``/``database_url`` for the embedded engine), or ``client=`` an open
:class:`~nexus.client.NexusClient`. Reads are ranged (a file is never fetched whole to
read part of it); writes are buffered in a spooled temporary file and sent as one
streamed write on close, so a file appears whole or not at all. Errors are Python's own
classes: Nexus's ``NexusFileNotFoundError`` is a ``FileNotFoundError``,
``NexusPermissionError`` a ``PermissionError``, and so on.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

import nexus
from nexus.client import NexusClient

__all__ = ["NexusFile", "NexusFileSystem"]

#: Writes up to this size stay in memory before the spool goes to disk.
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_CONFIG_KEYS = ("url", "api_key", "timeout", "data_dir", "database_url", "blob_url",
                "secret", "public_url")


class NexusFileSystem(AbstractFileSystem):
    """A Nexus deployment (a server, or the embedded engine) as an fsspec filesystem."""

    protocol = "nexus"
    root_marker = "/"

    def __init__(self, *, client: NexusClient | None = None, **options: Any) -> None:
        config = {key: options.pop(key) for key in _CONFIG_KEYS if key in options}
        super().__init__(**options)
        self.client = client if client is not None else nexus.connect(config=config)

    # -- paths ---------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("nexus://"):
            path = path[len("nexus://"):]
        path = "/" + path.lstrip("/")
        return path.rstrip("/") or "/"

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}  # a nexus:// URL names a path; the deployment comes from the options

    # -- metadata ------------------------------------------------------------------------

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        entries = [_info(entry) for entry in self.client.iter_list(path)]
        if not entries:  # an empty directory, or a file: Nexus lists a file as itself
            top = self.info(path)
            entries = [] if top["type"] == "directory" else [top]
        return entries if detail else [entry["name"] for entry in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return _info(self.client.stat(self._strip_protocol(path)))

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
             detail: bool = False, **kwargs: Any) -> Any:
        if maxdepth is not None:  # the walk honours depth; one recursive listing does not
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail,
                                **kwargs)
        path = self._strip_protocol(path)
        try:
            top = self.info(path)
        except FileNotFoundError:
            return {} if detail else []
        found: dict[str, dict[str, Any]] = {}
        if top["type"] == "file":
            found[path] = top
        else:
            if withdirs and path != "/":
                found[path] = top
            for entry in self.client.iter_list(path, recursive=True):
                if entry["type"] == "file" or withdirs:
                    found[entry["path"]] = _info(entry)
        names = sorted(found)
        return {name: found[name] for name in names} if detail else names

    def created(self, path: str) -> datetime:
        return datetime.fromisoformat(self.client.stat(self._strip_protocol(path))["created_at"])

    def modified(self, path: str) -> datetime:
        return datetime.fromisoformat(self.client.stat(self._strip_protocol(path))["modified_at"])

    def ukey(self, path: str) -> str:
        info = self.info(path)
        return str(info.get("etag") or f"{info['name']}@{info.get('version')}")

    # -- directories ---------------------------------------------------------------------

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.client.mkdir(self._strip_protocol(path), parents=create_parents,
                          exist_ok=False)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self.client.mkdir(self._strip_protocol(path), parents=True, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        self.client.rmdir(self._strip_protocol(path))

    # -- content -------------------------------------------------------------------------

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)
        if start is None and end is None:
            return self.client.read(path)
        if (start is not None and start < 0) or (end is not None and end < 0):
            size = self.info(path)["size"]
            start = max(0, size + start) if start is not None and start < 0 else start
            end = max(0, size + end) if end is not None and end < 0 else end
        offset = start or 0
        length = None if end is None else max(0, end - offset)
        return self.client.read(path, offset=offset, length=length)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite",
                  **kwargs: Any) -> None:
        self.client.write(self._strip_protocol(path), value,
                          if_none_match=mode == "create")

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite",
                 **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        with open(lpath, "rb") as source:
            self.client.write(rpath, source, if_none_match=mode == "create")

    def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None,
                 **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        if self.isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return
        if outfile is None and os.path.dirname(lpath):
            os.makedirs(os.path.dirname(lpath), exist_ok=True)
        with open(lpath, "wb") if outfile is None else _borrowed(outfile) as target:
            for chunk in self.client.read_stream(rpath):
                target.write(chunk)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.isdir(path1):
            self.makedirs(path2, exist_ok=True)
            return
        self.client.copy(path1, path2, overwrite=True)

    def mv(self, path1: Any, path2: Any, recursive: bool = False,
           maxdepth: int | None = None, **kwargs: Any) -> None:
        if isinstance(path1, str) and isinstance(path2, str) and maxdepth is None:
            source, target = self._strip_protocol(path1), self._strip_protocol(path2)
            if self.isdir(target) and not self.isdir(source):
                target = target.rstrip("/") + "/" + source.rsplit("/", 1)[-1]
            if not self.isdir(source) or recursive:
                self.client.rename(source, target, overwrite=True)  # one atomic move
                return
        super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        paths = path if isinstance(path, list) else [path]
        if maxdepth is not None:
            super().rm(path, recursive=recursive, maxdepth=maxdepth)
            return
        for one in paths:
            one = self._strip_protocol(one)
            if self.isdir(one):
                if not recursive:
                    raise IsADirectoryError(f"{one} is a directory: use recursive=True")
                self.client.rmdir(one, recursive=True)
            else:
                self.client.delete(one)

    def rm_file(self, path: str) -> None:
        self.client.delete(self._strip_protocol(path))

    def _rm(self, path: str) -> None:
        path = self._strip_protocol(path)
        if self.isdir(path):
            self.client.rmdir(path)
        else:
            self.client.delete(path)

    def _open(self, path: str, mode: str = "rb", block_size: Any = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              **kwargs: Any) -> NexusFile:
        path = self._strip_protocol(path)
        if mode == "xb" and self.exists(path):  # refused at open, as open(…, "xb") is
            raise FileExistsError(f"{path} exists")
        return NexusFile(self, path, mode=mode,
                         block_size=block_size or "default", autocommit=autocommit,
                         cache_options=cache_options, **kwargs)


class NexusFile(AbstractBufferedFile):
    """A file of :class:`NexusFileSystem`: ranged reads; a write is sent whole on close."""

    fs: NexusFileSystem

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self.fs.client.read(self.path, offset=start, length=max(0, end - start))

    def _initiate_upload(self) -> None:
        self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)

    def _upload_chunk(self, final: bool = False) -> bool:
        self.buffer.seek(0)
        self._spool.write(self.buffer.read())
        if final:
            self._spool.seek(0)
            try:
                self.fs.client.write(self.path, self._spool,
                                     if_none_match=self.mode == "xb")
            finally:
                self._spool.close()
        return True


def _info(entry: dict[str, Any]) -> dict[str, Any]:
    """A Nexus entry as fsspec describes files: ``name``, ``size``, ``type`` first."""
    return {"name": entry["path"], "size": entry["size"], "type": entry["type"],
            "etag": entry.get("etag"), "version": entry.get("version"),
            "created": entry.get("created_at"), "mtime": entry.get("modified_at")}


class _borrowed:
    """A caller's open file as a context manager that leaves it open."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def __enter__(self) -> Any:
        return self._file

    def __exit__(self, *exc: object) -> None:
        pass
