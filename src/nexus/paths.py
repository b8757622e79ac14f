"""Normalisation and validation of virtual paths — the only place that decides what a path is.

Every path that enters Nexus passes :func:`normalize` before it is stored, compared or
checked. A path is absolute, Unicode NFC, made of non-empty segments with no ``.``/``..``,
no control characters, no backslash, and nothing that NFKC folds into ``.`` or ``/``
(U+2024 ONE DOT LEADER, U+FF0F FULLWIDTH SOLIDUS, …): such characters are how
"normalising" storage layers were tricked into traversal before (MinIO CVE-2023-28433).

A path under ``/tenants/<id>/`` (and ``/tenants/<id>`` itself) belongs to tenant ``<id>``;
every other path belongs to the system partition, which only administrators reach.
"""

from __future__ import annotations

import re
import unicodedata

from nexus.errors import InvalidPathError

__all__ = [
    "MAX_PATH_BYTES",
    "MAX_SEGMENT_BYTES",
    "SYSTEM_PARTITION",
    "TENANTS_ROOT",
    "ancestors",
    "basename",
    "is_within",
    "join",
    "normalize",
    "parent",
    "partition_of",
    "tenant_of",
    "tenant_root",
    "validate_tenant_id",
]

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
TENANTS_ROOT = "/tenants"
#: Partition key of paths outside ``/tenants/<id>``; no tenant id can take this value
#: because tenant ids must start with a letter or digit.
SYSTEM_PARTITION = "_system"

_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# Categories Cc (control), Cf (format: zero-width, bidi overrides), Cs, Co, Cn.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Slashes that NFKC leaves alone but that render as '/' (division and fraction slash).
_SLASH_LOOKALIKES = frozenset("\u2215\u2044\u29f8")


def _folds_to_separator(ch: str) -> bool:
    if ch.isascii():
        return False
    folded = unicodedata.normalize("NFKC", ch)
    return "." in folded or "/" in folded or "\\" in folded


def normalize(path: object) -> str:
    """Return the canonical form of ``path`` or raise :class:`InvalidPathError`.

    Trailing slashes are dropped (``/a/`` is ``/a``); everything else that is not already
    canonical is rejected rather than guessed at, because two spellings of one path are
    how permission checks get bypassed.
    """
    if not isinstance(path, str):
        raise InvalidPathError(f"path must be a string, not {type(path).__name__}", rule="type")
    if not path:
        raise InvalidPathError("path is empty", path=path, rule="empty")
    if not path.startswith("/"):
        raise InvalidPathError(f"path must be absolute (start with '/'): {path!r}", path=path,
                               rule="absolute")
    if len(path) > MAX_PATH_BYTES:  # cheap guard before any Unicode work on huge input
        raise InvalidPathError(f"path longer than {MAX_PATH_BYTES} bytes", path=path[:64],
                               rule="path_length")
    if "\x00" in path:
        raise InvalidPathError("path contains a NUL byte", path=path, rule="nul")
    if "\\" in path:
        raise InvalidPathError("path contains a backslash", path=path, rule="backslash")
    for ch in path:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise InvalidPathError(
                f"path contains control or invisible character U+{ord(ch):04X}",
                path=path, rule="control_character")
    nfc = unicodedata.normalize("NFC", path)
    if path != "/" and nfc.endswith("/"):
        nfc = nfc.rstrip("/")
        if not nfc:
            raise InvalidPathError("path has empty segments", path=path, rule="empty_segment")
    if nfc == "/":
        return nfc
    for segment in nfc[1:].split("/"):
        _check_segment(segment, path)
    if len(nfc.encode("utf-8")) > MAX_PATH_BYTES:
        raise InvalidPathError(f"path longer than {MAX_PATH_BYTES} bytes", path=path[:64],
                               rule="path_length")
    _check_tenant_segment(nfc)
    return nfc


def _check_segment(segment: str, path: str) -> None:
    if segment == "":
        raise InvalidPathError("path has an empty segment ('//')", path=path, rule="empty_segment")
    if segment in (".", ".."):
        raise InvalidPathError(f"path has a '{segment}' segment", path=path, rule="dot_segment")
    for ch in segment:
        if ch != "." and (ch in _SLASH_LOOKALIKES or _folds_to_separator(ch)):
            raise InvalidPathError(
                f"segment {segment!r} contains U+{ord(ch):04X}, which imitates '.' or '/'",
                path=path, rule="confusable")
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise InvalidPathError(f"segment longer than {MAX_SEGMENT_BYTES} bytes", path=path[:64],
                               rule="segment_length")


def _check_tenant_segment(path: str) -> None:
    if path.startswith(TENANTS_ROOT + "/"):
        validate_tenant_id(path.split("/", 3)[2], path=path)


def validate_tenant_id(tenant_id: object, *, path: str | None = None) -> str:
    """Return ``tenant_id`` if it is a valid slug: 1–63 of ``a-z 0-9 _ -``, starting alnum."""
    if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
        raise InvalidPathError(
            f"tenant id {tenant_id!r} must be 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit", path=path, rule="tenant_id")
    return tenant_id


def parent(path: str) -> str | None:
    """Parent of a normalised path; ``None`` for the root."""
    if path == "/":
        return None
    head = path.rsplit("/", 1)[0]
    return head or "/"


def basename(path: str) -> str:
    """Last segment of a normalised path (``""`` for the root)."""
    return path.rsplit("/", 1)[1]


def join(directory: str, name: str) -> str:
    """Join and normalise ``directory`` and one relative ``name``."""
    return normalize(directory.rstrip("/") + "/" + name)


def ancestors(path: str) -> list[str]:
    """All proper ancestors of a normalised path, nearest first, ending with ``/``."""
    out: list[str] = []
    current = parent(path)
    while current is not None:
        out.append(current)
        current = parent(current)
    return out


def is_within(path: str, root: str) -> bool:
    """True if ``path`` is ``root`` or below it (both normalised)."""
    return path == root or root == "/" or path.startswith(root + "/")


def tenant_of(path: str) -> str | None:
    """The tenant that owns a normalised path, or ``None`` for the system partition."""
    if path.startswith(TENANTS_ROOT + "/"):
        return path.split("/", 3)[2]
    return None


def partition_of(path: str) -> str:
    """Storage partition key of a normalised path: its tenant id or :data:`SYSTEM_PARTITION`."""
    return tenant_of(path) or SYSTEM_PARTITION


def tenant_root(tenant_id: str) -> str:
    """``/tenants/<tenant_id>`` for a valid tenant id."""
    return f"{TENANTS_ROOT}/{validate_tenant_id(tenant_id)}"
