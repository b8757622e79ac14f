"""Where a share shows up in its target tenant: ``/tenants/<target>/shared/from-<source>/``.

Each active share out of ``<source>`` into ``<target>`` appears there under the shared
path's name, as a live reference: reads (and, for ``can_write`` shares, writes) go to the
source path, permission-checked through the share like any direct access. A real entry
at the same path wins over the alias, so nothing stored is ever hidden.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nexus import paths
from nexus.store import Database, FileRepository, TenantRepository
from nexus.store.shares import ShareRecord, ShareRepository

__all__ = ["ShareAliases", "alias_tenants"]

_PREFIX = "from-"


def _alias_parts(path: str) -> tuple[str, str, list[str]] | None:
    """``(target, source, rest)`` for ``/tenants/<target>/shared/from-<source>[/rest]``."""
    parts = path.split("/")
    if len(parts) < 5 or parts[1] != "tenants" or parts[3] != "shared" \
            or not parts[4].startswith(_PREFIX):
        return None
    source = parts[4][len(_PREFIX):]
    if not source or source == parts[2]:
        return None
    try:
        paths.validate_tenant_id(source)
    except ValueError:
        return None
    return parts[2], source, parts[5:]


def alias_tenants(path: str) -> tuple[str, str] | None:
    """``(target, source)`` of an alias-shaped path (``/tenants/<t>/shared/from-<s>[/…]``
    → ``(<t>, <s>)``), from its shape alone; None for any other path."""
    parsed = _alias_parts(path)
    return None if parsed is None else (parsed[0], parsed[1])


class ShareAliases:
    """Resolves alias paths to their sources and lists alias directories."""

    def __init__(self, *, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def resolve(self, path: str) -> str:
        """The source path an alias stands for, or ``path`` itself."""
        parsed = _alias_parts(path)
        if parsed is None or not parsed[2]:
            return path
        target, source, rest = parsed
        with self._db.read() as conn:
            if FileRepository(conn).get(target, path) is not None:
                return path
            share = self._find(conn, target, source, rest[0])
        if share is None:
            return path
        return "/".join([share.path, *rest[1:]])

    def alias_directory(self, path: str) -> tuple[str, list[tuple[str, str]]] | None:
        """For ``/tenants/<t>/shared/from-<s>``: ``(target, [(alias path, source path)])``
        of the active shares; ``None`` if ``path`` is not such a directory."""
        parsed = _alias_parts(path)
        if parsed is None or parsed[2]:
            return None
        target, source, _ = parsed
        with self._db.read() as conn:
            shares = self._active(conn, target, source)
        return target, [(f"{path}/{paths.basename(s.path)}", s.path) for s in shares]

    def sources_into(self, target: str) -> list[str]:
        """Tenants with at least one active share into ``target``."""
        with self._db.read() as conn:
            return sorted({s.source_tenant for s in self._active(conn, target, None)})

    def _find(self, conn: object, target: str, source: str, name: str) -> ShareRecord | None:
        for share in self._active(conn, target, source):
            if paths.basename(share.path) == name:
                return share
        return None

    def _active(self, conn: object, target: str, source: str | None) -> list[ShareRecord]:
        now = self._clock()
        incarnation = TenantRepository(conn).incarnation(target)  # type: ignore[arg-type]
        if incarnation is None:
            return []
        return [s for s in ShareRepository(conn).incoming(  # type: ignore[arg-type]
                    target, incarnation=incarnation)
                if (source is None or s.source_tenant == source) and s.revoked_at is None
                and (s.expires_at is None or s.expires_at > now)]
