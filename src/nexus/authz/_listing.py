"""Candidate generation for list-objects and list-subjects.

Both walk the tuple graph *generously*: intersections and exclusions are treated as if
every positive branch alone could grant, so the walk finds a superset of the answer. The
checker then confirms every candidate with a real check, which applies ``and`` and
``but not`` exactly — the split OpenFGA uses (reverse expansion, then check).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from nexus.authz.reader import RelationTuple, Subject, TupleReader
from nexus.authz.schema import (
    WILDCARD,
    AuthzModel,
    Computed,
    Difference,
    Intersection,
    Rewrite,
    This,
    TupleToUserset,
    Union,
)

__all__ = ["ReverseIndex", "forward_subjects", "reverse_candidates"]

_Node = tuple[str, str, str | None]  # (type, id, relation or None for a plain object)


def _positive(node: Rewrite) -> Iterator[Rewrite]:
    """The leaves that can add subjects: everything except what ``but not`` subtracts."""
    match node:
        case Union(children) | Intersection(children):
            for child in children:
                yield from _positive(child)
        case Difference(base, _):
            yield from _positive(base)
        case _:
            yield node


class ReverseIndex:
    """Which relations a subject kind or a relation feeds into, derived from the model."""

    def __init__(self, model: AuthzModel) -> None:
        # (subject type, subject relation | "*" | None) -> [(object type, relation)]
        self.direct: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
        # (type, relation) -> relations of the same type that include it
        self.computed: dict[tuple[str, str], list[str]] = {}
        # (child type, relation) -> [(parent type, tupleset, relation on parent)]
        self.ttu: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for typedef in model.types.values():
            for rel in typedef.relations.values():
                for leaf in _positive(rel.rewrite):
                    match leaf:
                        case This(refs):
                            for ref in refs:
                                self.direct.setdefault(ref.key(), []).append(
                                    (typedef.name, rel.name))
                        case Computed(relation):
                            self.computed.setdefault((typedef.name, relation), []).append(
                                rel.name)
                        case TupleToUserset(tupleset, computed):
                            ts = typedef.relations[tupleset].rewrite
                            assert isinstance(ts, This)  # enforced by validation
                            for ref in ts.directly_related:
                                self.ttu.setdefault((ref.type, computed), []).append(
                                    (typedef.name, tupleset, rel.name))
                        case _:  # pragma: no cover - _positive yields only leaves
                            pass


def reverse_candidates(index: ReverseIndex, reader: TupleReader, subject: Subject,
                       object_type: str, relation: str,
                       count_reads: Callable[[int], None]) -> set[str]:
    """Object ids of ``object_type`` that *might* have ``relation`` for ``subject``."""
    start: _Node = (subject.type, subject.id, subject.relation)
    seen: set[_Node] = {start}
    queue: deque[_Node] = deque([start])
    if subject.relation is None and subject.id != WILDCARD:
        # Wildcard grants (`user:*`) reach every user: walk from them too.
        seen.add((subject.type, WILDCARD, None))
        queue.append((subject.type, WILDCARD, None))
    found: set[str] = set()

    def visit(node: _Node) -> None:
        if node not in seen:
            seen.add(node)
            queue.append(node)

    while queue:
        t, i, r = queue.popleft()
        if r is not None and t == object_type and r == relation:
            found.add(i)
        key = (t, WILDCARD if i == WILDCARD else r)
        for ot, orel in index.direct.get(key, ()):
            tuples = list(reader.read_reverse(t, i, r, ot, orel))
            count_reads(len(tuples))
            for tup in tuples:
                visit((ot, tup.object_id, orel))
        if r is None:
            continue
        for r2 in index.computed.get((t, r), ()):
            visit((t, i, r2))
        for pt, tupleset, r2 in index.ttu.get((t, r), ()):
            tuples = list(reader.read_reverse(t, i, None, pt, tupleset))
            count_reads(len(tuples))
            for tup in tuples:
                visit((pt, tup.object_id, r2))
    return found


def forward_subjects(model: AuthzModel, reader: TupleReader, object_type: str,
                     object_id: str, relation: str,
                     count_reads: Callable[[int], None]) -> set[Subject]:
    """Subjects (objects, wildcards and usersets) that *might* have the relation."""
    found: set[Subject] = set()
    seen: set[tuple[str, str, str]] = set()
    stack = [(object_type, object_id, relation)]

    def read(ot: str, oid: str, rel: str) -> list[RelationTuple]:
        tuples = list(reader.read(ot, oid, rel))
        count_reads(len(tuples))
        return tuples

    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        ot, oid, rel = key
        found.add(Subject(ot, oid, rel))  # a userset may contain itself via computed relations
        typedef = model.types.get(ot)
        if typedef is None or rel not in typedef.relations:
            continue
        for leaf in _positive(typedef.relations[rel].rewrite):
            match leaf:
                case This():
                    for t in read(ot, oid, rel):
                        found.add(t.subject)
                        if t.subject_relation is not None:
                            stack.append((t.subject_type, t.subject_id, t.subject_relation))
                case Computed(r2):
                    stack.append((ot, oid, r2))
                case TupleToUserset(tupleset, computed):
                    for t in read(ot, oid, tupleset):
                        if t.subject_relation is None and t.subject_id != WILDCARD:
                            stack.append((t.subject_type, t.subject_id, computed))
                case _:  # pragma: no cover - _positive yields only leaves
                    pass
    return found
