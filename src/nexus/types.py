"""Small frozen value types shared by every layer."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nexus.errors import InvalidArgumentError

__all__ = ["FileInfo", "Page", "Principal", "iso_time", "parse_timestamp"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: derived from a credential, never from request parameters.

    ``tenant_id`` is ``None`` only for system principals (administrators not bound to a
    tenant). ``is_admin`` marks the system administrator, who bypasses permission checks.
    """

    user_id: str
    tenant_id: str | None
    is_admin: bool = False
    key_id: str | None = None
    #: The incarnation of ``tenant_id`` the credential belongs to (see
    #: ``nexus.service.incarnations``); ``None`` means "the current one" (in-process
    #: principals). A principal of a dead incarnation is denied everything.
    incarnation: str | None = None

    @property
    def log_label(self) -> str:
        """Who this is in an access-log line: the tenant, ``admin`` or ``-``."""
        return self.tenant_id or ("admin" if self.is_admin else "-")

    @classmethod
    def local_admin(cls) -> Principal:
        """The principal of an embedded client opened without an API key."""
        return cls(user_id="local-admin", tenant_id=None, is_admin=True)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """Metadata of one file or directory as the API returns it."""

    path: str
    name: str
    type: str  # "file" | "directory"
    size: int
    etag: str | None
    version: int
    created_at: str
    modified_at: str

    def to_dict(self) -> dict[str, Any]:
        # Flat fields only: a plain dict is ~10x cheaper than dataclasses.asdict's deep copy.
        return {"path": self.path, "name": self.name, "type": self.type, "size": self.size,
                "etag": self.etag, "version": self.version, "created_at": self.created_at,
                "modified_at": self.modified_at}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next_cursor`` is ``None`` on the last page."""

    entries: list[FileInfo]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [e.to_dict() for e in self.entries], "next_cursor": self.next_cursor}


def iso_time(timestamp: float) -> str:
    """UTC ISO-8601 with microseconds, the format of every time the API returns: exactly
    ``datetime.fromtimestamp(timestamp, UTC).isoformat()``, with the whole seconds' text
    cached (a listing formats two times per entry, mostly of a few distinct seconds)."""
    fraction, whole = math.modf(timestamp)
    micro = round(fraction * 1_000_000)  # as datetime rounds: half to even
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    second = _iso_second(int(whole))
    return f"{second}.{micro:06d}+00:00" if micro else f"{second}+00:00"


@functools.lru_cache(maxsize=4096)
def _iso_second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).isoformat()[:-6]  # without "+00:00"


def parse_timestamp(value: Any) -> float | None:
    """A time given as Unix seconds, ``datetime`` or ISO-8601 text, as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    raise InvalidArgumentError(f"not a time: {value!r} (use Unix seconds or ISO-8601)")
