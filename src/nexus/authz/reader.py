"""The read-only view of relation tuples that the checker depends on.

Like OpenFGA's ``RelationshipTupleReader``, :class:`TupleReader` is deliberately narrow
(two lookups) so that the checker runs unchanged over the SQL store, an in-memory list
(:class:`MemoryTupleReader`), contextual tuples layered on top (:class:`LayeredTupleReader`)
or tuples derived from paths (:class:`PathParentReader`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from nexus.authz.schema import WILDCARD
from nexus.errors import InvalidArgumentError

__all__ = [
    "LayeredTupleReader",
    "MemoryTupleReader",
    "PathParentReader",
    "RelationTuple",
    "Subject",
    "TupleReader",
    "parent_path",
]


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is asking: ``user:alice``, ``user:*`` (everyone) or ``group:eng#member``."""

    type: str
    id: str
    relation: str | None = None

    @classmethod
    def parse(cls, text: str) -> Subject:
        """Parse ``type:id`` or ``type:id#relation``; raises :class:`InvalidArgumentError`."""
        ref, _, relation = text.partition("#")
        type_, colon, id_ = ref.partition(":")
        if not colon or not type_ or not id_ or ":" in id_ or (_ and not relation):
            raise InvalidArgumentError(f"invalid subject {text!r}: expected 'type:id' or "
                                       "'type:id#relation'", subject=text)
        return cls(type_, id_, relation or None)

    def __str__(self) -> str:
        text = f"{self.type}:{self.id}"
        return f"{text}#{self.relation}" if self.relation else text


@dataclass(frozen=True, slots=True)
class RelationTuple:
    """``object_type:object_id#relation@subject``; ``subject_id == "*"`` is a wildcard.

    ``expires_at`` (Unix seconds) makes a grant time-limited: from that instant on, readers
    never yield the tuple, so it grants nothing.
    """

    object_type: str
    object_id: str
    relation: str
    subject_type: str
    subject_id: str
    subject_relation: str | None = None
    expires_at: float | None = None

    @classmethod
    def parse(cls, obj: str, relation: str, subject: str, *,
              expires_at: float | None = None) -> RelationTuple:
        """Build from OpenFGA strings: ``("document:1", "viewer", "group:x#member")``."""
        object_type, colon, object_id = obj.partition(":")
        if not colon or not object_type or not object_id:
            raise InvalidArgumentError(f"invalid object {obj!r}: expected 'type:id'")
        s = Subject.parse(subject)
        return cls(object_type, object_id, relation, s.type, s.id, s.relation, expires_at)

    @property
    def subject(self) -> Subject:
        """The subject as a :class:`Subject`."""
        return Subject(self.subject_type, self.subject_id, self.subject_relation)


class TupleReader(Protocol):
    """Read access to the live (unexpired) tuples of one tenant's store.

    Implementations never yield a tuple whose ``expires_at`` is at or before their clock's
    ``now``. Order is unspecified. Both methods may raise
    :class:`~nexus.errors.UnavailableError` if the backing store is unreachable; callers
    treat any error as a denial.
    """

    def read(self, object_type: str, object_id: str, relation: str) -> Iterable[RelationTuple]:
        """Every tuple on ``object_type:object_id#relation``: plain, wildcard and userset
        subjects alike."""
        ...

    def read_reverse(self, subject_type: str, subject_id: str, subject_relation: str | None,
                     object_type: str, relation: str) -> Iterable[RelationTuple]:
        """Every tuple ``object_type:*#relation@subject`` for exactly this subject
        (``subject_id="*"`` finds wildcard grants). Used by list-objects."""
        ...


def _live(tuples: Iterable[RelationTuple], now: float) -> Iterator[RelationTuple]:
    for t in tuples:
        if t.expires_at is None or t.expires_at > now:
            yield t


class MemoryTupleReader:
    """A :class:`TupleReader` over an in-memory list, indexed in both directions.

    ``clock`` returns the current Unix time; it is injected so tests can move time.
    """

    def __init__(self, tuples: Iterable[RelationTuple] = (), *,
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._forward: dict[tuple[str, str, str], list[RelationTuple]] = {}
        self._reverse: dict[tuple[str, str, str | None, str, str], list[RelationTuple]] = {}
        self._all: set[RelationTuple] = set()
        for t in tuples:
            self.add(t)

    def add(self, t: RelationTuple) -> None:
        """Store one tuple; adding the same tuple twice keeps one copy."""
        if t in self._all:
            return
        self._all.add(t)
        self._forward.setdefault((t.object_type, t.object_id, t.relation), []).append(t)
        key = (t.subject_type, t.subject_id, t.subject_relation, t.object_type, t.relation)
        self._reverse.setdefault(key, []).append(t)

    def __len__(self) -> int:
        return len(self._all)

    def read(self, object_type: str, object_id: str, relation: str) -> Iterable[RelationTuple]:
        """See :meth:`TupleReader.read`."""
        found = self._forward.get((object_type, object_id, relation))
        if not found:
            return ()
        now = self._clock()
        # Fast path: most tuples never expire, so avoid a generator per read.
        return [t for t in found if t.expires_at is None or t.expires_at > now]

    def read_reverse(self, subject_type: str, subject_id: str, subject_relation: str | None,
                     object_type: str, relation: str) -> Iterable[RelationTuple]:
        """See :meth:`TupleReader.read_reverse`."""
        key = (subject_type, subject_id, subject_relation, object_type, relation)
        return list(_live(self._reverse.get(key, ()), self._clock()))


class LayeredTupleReader:
    """``base`` plus extra tuples (OpenFGA's contextual tuples), read as one store."""

    def __init__(self, base: TupleReader, extra: Iterable[RelationTuple], *,
                 clock: Callable[[], float] = time.time) -> None:
        self._base = base
        self._extra = MemoryTupleReader(extra, clock=clock)

    def read(self, object_type: str, object_id: str, relation: str) -> Iterable[RelationTuple]:
        """See :meth:`TupleReader.read`; a tuple present in both layers is yielded once."""
        extra = self._extra.read(object_type, object_id, relation)
        base = self._base.read(object_type, object_id, relation)
        return _dedupe(extra, base)

    def read_reverse(self, subject_type: str, subject_id: str, subject_relation: str | None,
                     object_type: str, relation: str) -> Iterable[RelationTuple]:
        """See :meth:`TupleReader.read_reverse`."""
        args = (subject_type, subject_id, subject_relation, object_type, relation)
        return _dedupe(self._extra.read_reverse(*args), self._base.read_reverse(*args))


def _dedupe(first: Iterable[RelationTuple], second: Iterable[RelationTuple]) -> list[RelationTuple]:
    out = list(first)
    if not out:
        return list(second)
    seen = set(out)
    out.extend(t for t in second if t not in seen)
    return out


def parent_path(path: str) -> str | None:
    """The parent directory of an absolute virtual path; ``None`` for ``/``.

    ``/tenants/acme/a.txt`` → ``/tenants/acme`` → ``/tenants`` → ``/`` → ``None``.
    """
    if path == "/" or not path.startswith("/"):
        return None
    head = path.rstrip("/").rpartition("/")[0]
    return head or "/"


class PathParentReader:
    """Derive ``file:<parent>#parent@file:<path>`` tuples from paths instead of storing them.

    The default model inherits permissions down the directory tree through ``parent``;
    storing one parent tuple per file would duplicate the namespace, so this wrapper
    answers ``read(file, path, parent)`` from the path itself and never consults ``inner``
    for that relation. Everything else goes to ``inner``.

    The reverse direction (the children of a directory) is not derivable from a path:
    pass ``list_children`` (e.g. backed by the metadata store) to support it. Without it,
    :meth:`read_reverse` on the parent relation raises :class:`InvalidArgumentError`, so
    list-objects must be given explicit candidates instead of silently missing objects.
    """

    def __init__(self, inner: TupleReader, *, object_type: str = "file",
                 relation: str = "parent",
                 list_children: Callable[[str], Iterable[str]] | None = None) -> None:
        self._inner = inner
        self._type = object_type
        self._relation = relation
        self._list_children = list_children

    def read(self, object_type: str, object_id: str, relation: str) -> Iterable[RelationTuple]:
        """See :meth:`TupleReader.read`; the parent relation is derived from the path."""
        if object_type != self._type or relation != self._relation:
            return self._inner.read(object_type, object_id, relation)
        parent = parent_path(object_id)
        if parent is None:
            return ()
        return (RelationTuple(self._type, object_id, relation, self._type, parent),)

    def read_reverse(self, subject_type: str, subject_id: str, subject_relation: str | None,
                     object_type: str, relation: str) -> Iterable[RelationTuple]:
        """See :meth:`TupleReader.read_reverse`; children need ``list_children``."""
        if object_type != self._type or relation != self._relation:
            return self._inner.read_reverse(subject_type, subject_id, subject_relation,
                                            object_type, relation)
        if subject_type != self._type or subject_relation is not None or subject_id == WILDCARD:
            return ()
        if self._list_children is None:
            raise InvalidArgumentError(
                f"cannot enumerate the children of {self._type}:{subject_id}: list objects of "
                f"type {self._type!r} needs explicit candidates or a list_children callback")
        return [RelationTuple(self._type, child, relation, self._type, subject_id)
                for child in self._list_children(subject_id)
                if parent_path(child) == subject_id]
