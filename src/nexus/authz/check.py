"""The permission checker: check, batch check, expand, list objects and list subjects.

Evaluation follows OpenFGA's ``CheckRewrite`` (``internal/graph/check.go``): one dispatch
on the rewrite node (one ``match``), recursing into usersets, computed relations and
``X from Y``. Semantics worth knowing:

- a wildcard tuple ``user:*`` grants every *object* subject of type ``user`` (never a
  userset); a request for ``user:*`` itself matches only wildcard tuples;
- tuples that the current model no longer allows (type restriction removed) are ignored;
- a cycle (re-entering an object#relation that is being evaluated) yields ``False`` for
  that branch. ``True`` is always memoised (cutting a cycle only removes grants, and a
  ``but not`` over a cut-short subtract denies); ``False`` is memoised when every cycle it
  met led back to the key itself or deeper (least fixpoint), never when it depended on a
  key still in progress further up;
- every rewrite node evaluated and every userset or tupleset expansion costs one step of
  ``max_steps``; with ``max_depth`` and ``max_reads`` it bounds one check, and exceeding
  any of them raises :class:`AuthzLimitExceeded` (fail closed), but an ``or`` that is
  granted by another branch still grants, and an ``and`` that another branch denies
  still denies — as OpenFGA's concurrent union and intersection behave.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from nexus.authz._listing import ReverseIndex, forward_subjects, reverse_candidates
from nexus.authz.errors import AuthzDepthExceeded, AuthzLimitExceeded
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
from nexus.errors import InvalidArgumentError

__all__ = [
    "AuthzDepthExceeded",
    "AuthzLimitExceeded",
    "CheckRequest",
    "Checker",
]

_Key = tuple[str, str, str]  # (object_type, object_id, relation)
_NO_CYCLE = 1 << 62  # "no cycle met": above any stack position
#: A listing checks every candidate it found; together its checks may use this many
#: times one check's step and read budgets (memoised sub-results make most of them cheap).
LISTING_BUDGET_FACTOR = 10


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """One item of :meth:`Checker.check_many`."""

    object_type: str
    object_id: str
    relation: str
    subject_type: str
    subject_id: str
    subject_relation: str | None = None


class Checker:
    """Answers permission questions for one model over one :class:`TupleReader`.

    ``max_depth`` bounds nested relation dispatches (OpenFGA's resolution depth, 25);
    ``max_reads`` bounds the tuples examined by one call. The checker holds no mutable
    state between calls, so one instance may serve concurrent requests.
    """

    def __init__(self, model: AuthzModel, reader: TupleReader, *, max_depth: int = 25,
                 max_reads: int = 100_000, max_steps: int = 20_000) -> None:
        self.model = model
        self.reader = reader
        self.max_depth = max_depth
        self.max_reads = max_reads
        self.max_steps = max_steps
        # Flattened once per model, so the hot path does one dict lookup per dispatch.
        self._rewrites = model.rewrites

    # -- public API ----------------------------------------------------------------------

    def check(self, object_type: str, object_id: str, relation: str, subject_type: str,
              subject_id: str, subject_relation: str | None = None) -> bool:
        """Whether ``subject_type:subject_id[#subject_relation]`` has ``relation`` on
        ``object_type:object_id``.

        Raises :class:`InvalidArgumentError` for a request the model cannot answer
        (unknown type or relation) and :class:`AuthzLimitExceeded` when resolution is too
        deep or too wide; callers must treat both as a denial.
        """
        subject = Subject(subject_type, subject_id, subject_relation)
        self._validate(object_type, relation, subject)
        with _stack_guard():
            return _Evaluation(self, subject).check(object_type, object_id, relation, 0)

    def check_many(self, requests: Iterable[CheckRequest]) -> list[bool]:
        """:meth:`check` for each request, in order. Requests for the same subject share
        one memo, so checking many objects for one user is cheaper than separate calls."""
        requests = list(requests)
        evaluations: dict[Subject, _Evaluation] = {}
        results: list[bool] = []
        with _stack_guard():
            for r in requests:
                subject = Subject(r.subject_type, r.subject_id, r.subject_relation)
                self._validate(r.object_type, r.relation, subject)
                ev = evaluations.get(subject)
                if ev is None:
                    ev = evaluations[subject] = _Evaluation(self, subject)
                ev.reads = ev.steps = 0  # budgets apply per request, not per batch
                results.append(ev.check(r.object_type, r.object_id, r.relation, 0))
        return results

    def expand(self, object_type: str, object_id: str, relation: str) -> dict[str, Any]:
        """One level of the userset tree of ``object_type:object_id#relation`` as nested
        dicts (OpenFGA's Expand): leaves list direct subjects, computed usersets and the
        usersets reached through ``X from Y``; expand those again to go deeper."""
        rewrite = self.model.relation(object_type, relation).rewrite
        return {"name": f"{object_type}:{object_id}#{relation}",
                **self._expand_node(object_type, object_id, relation, rewrite)}

    def list_objects(self, subject: Subject | str, relation: str, object_type: str, *,
                     candidates: Iterable[str] | None = None, after: str | None = None,
                     limit: int | None = None,
                     accept: Callable[[str], bool] | None = None) -> list[str]:
        """The ids of objects of ``object_type`` on which ``subject`` has ``relation``,
        sorted.

        Without ``candidates`` the objects are found by walking tuples backwards from the
        subject (:meth:`TupleReader.read_reverse`) and then confirmed by a check; a reader
        that cannot enumerate (e.g. derived file parents) raises. With ``candidates``,
        exactly those ids are checked — the caller's way to list a directory.

        For a page, only ids after ``after`` that ``accept`` keeps are checked, in sorted
        order, until ``limit`` are found: a page costs the checks up to its end, not the
        whole listing's.
        """
        subject = Subject.parse(subject) if isinstance(subject, str) else subject
        self._validate(object_type, relation, subject)
        ev = _Evaluation(self, subject)
        if candidates is None:
            candidates = reverse_candidates(self._reverse_index, self.reader, subject,
                                            object_type, relation, _ReadBudget(self.max_reads))
        found = set()
        # One budget for all the candidates' checks, not one each: otherwise a listing
        # costs (candidates × max_steps), unbounded by anything a caller sees.
        ev.max_steps = self.max_steps * LISTING_BUDGET_FACTOR
        ev.max_reads = self.max_reads * LISTING_BUDGET_FACTOR
        ordered = sorted(set(candidates))
        if after is not None:
            ordered = ordered[bisect.bisect_right(ordered, after):]
        with _stack_guard():
            for object_id in ordered:
                if accept is not None and not accept(object_id):
                    continue
                if ev.check(object_type, object_id, relation, 0):
                    found.add(object_id)
                    if limit is not None and len(found) >= limit:
                        break
        return sorted(found)

    def list_subjects(self, object_type: str, object_id: str, relation: str,
                      subject_type: str, subject_relation: str | None = None) -> list[Subject]:
        """The subjects of ``subject_type`` (or usersets ``subject_type#subject_relation``)
        that have ``relation`` on the object, sorted; ``user:*`` appears when a wildcard
        grants the relation to every user (OpenFGA's ListUsers)."""
        self.model.relation(object_type, relation)
        if subject_type not in self.model.types:
            raise InvalidArgumentError(f"unknown subject type {subject_type!r}")
        if subject_relation is not None:
            self.model.relation(subject_type, subject_relation)
        found = forward_subjects(self.model, self.reader, object_type, object_id, relation,
                                 _ReadBudget(self.max_reads))
        wanted = [s for s in found if s.type == subject_type and s.relation == subject_relation]
        allowed = set()
        steps = reads = 0  # one budget for all the candidates' checks, as in list_objects
        with _stack_guard():
            for candidate in sorted(wanted, key=str):
                ev = _Evaluation(self, candidate)
                ev.max_steps = self.max_steps * LISTING_BUDGET_FACTOR
                ev.max_reads = self.max_reads * LISTING_BUDGET_FACTOR
                ev.steps, ev.reads = steps, reads
                if ev.check(object_type, object_id, relation, 0):
                    allowed.add(candidate)
                steps, reads = ev.steps, ev.reads
        return sorted(allowed, key=str)

    # -- helpers -------------------------------------------------------------------------

    @cached_property
    def _reverse_index(self) -> ReverseIndex:
        # Built on the first list_objects only; it is derived from the immutable model.
        return ReverseIndex(self.model)

    def _validate(self, object_type: str, relation: str, subject: Subject) -> None:
        self.model.relation(object_type, relation)  # raises for unknown type/relation
        if subject.type not in self.model.types:
            raise InvalidArgumentError(f"unknown subject type {subject.type!r}")
        if subject.relation is not None:
            if subject.id == WILDCARD:
                raise InvalidArgumentError("a wildcard subject cannot have a relation")
            self.model.relation(subject.type, subject.relation)
        if not subject.id:
            raise InvalidArgumentError("the subject id must not be empty")

    def _expand_node(self, ot: str, oid: str, relation: str, node: Rewrite) -> dict[str, Any]:
        match node:
            case This():
                users = sorted(str(t.subject) for t in self.reader.read(ot, oid, relation)
                               if (t.subject_type, WILDCARD if t.subject_id == WILDCARD
                                   else t.subject_relation) in node.allowed)
                return {"leaf": {"users": users}}
            case Computed(rel):
                return {"leaf": {"computed": f"{ot}:{oid}#{rel}"}}
            case TupleToUserset(tupleset, computed):
                targets = sorted(f"{t.subject_type}:{t.subject_id}#{computed}"
                                 for t in self.reader.read(ot, oid, tupleset)
                                 if t.subject_relation is None and t.subject_id != WILDCARD
                                 and (t.subject_type, computed) in self._rewrites)
                return {"leaf": {"tupleToUserset": {"tupleset": f"{ot}:{oid}#{tupleset}",
                                                    "computed": targets}}}
            case Union(children):
                return {"union": [self._expand_node(ot, oid, relation, c) for c in children]}
            case Intersection(children):
                return {"intersection": [self._expand_node(ot, oid, relation, c)
                                         for c in children]}
            case Difference(base, subtract):
                return {"difference": {"base": self._expand_node(ot, oid, relation, base),
                                       "subtract": self._expand_node(ot, oid, relation,
                                                                     subtract)}}
        raise AssertionError(node)  # pragma: no cover - the match above is exhaustive


@contextmanager
def _stack_guard() -> Iterator[None]:
    """Turn running out of Python's stack into a denial with a 4xx.

    Evaluation recurses once per resolution level and per nested group of a rewrite. Both
    are bounded (``max_depth``; the parser's ``MAX_NESTING``), but the depth limit grows
    with the path's depth (``25 + 2 × segments``) and a path may have hundreds of segments,
    so the interpreter's limit can still be reached first: that is a check too deep to
    answer, denied like ``max_depth``, never an internal error.
    """
    try:
        yield
    except RecursionError as exc:
        raise AuthzDepthExceeded("authorization check nested too deeply to evaluate; "
                                 "denied", limit="stack") from exc


class _ReadBudget:
    """Counts tuples read by one listing call; raises past ``max_reads`` (fail closed)."""

    def __init__(self, max_reads: int) -> None:
        self.left = max_reads

    def __call__(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise AuthzLimitExceeded("authorization listing read too many tuples; denied")


class _Evaluation:
    """The state of resolving questions for one subject: memo, in-progress set, budgets."""

    __slots__ = ("checker", "rewrites", "reader", "st", "sid", "srel", "memo", "active",
                 "cycles", "floor", "reads", "steps", "max_depth", "max_reads", "max_steps")

    def __init__(self, checker: Checker, subject: Subject) -> None:
        self.checker = checker
        self.rewrites = checker._rewrites
        self.reader = checker.reader
        self.st, self.sid, self.srel = subject.type, subject.id, subject.relation
        self.memo: dict[_Key, bool] = {}
        # key -> its position on the evaluation stack; ``floor`` is the lowest position a
        # cycle has re-entered since it was last reset (see ``check``).
        self.active: dict[_Key, int] = {}
        self.cycles = 0
        self.floor = _NO_CYCLE
        self.reads = 0
        self.steps = 0
        self.max_depth = checker.max_depth
        self.max_reads = checker.max_reads
        self.max_steps = checker.max_steps

    def step(self, n: int = 1) -> None:
        # Counting work, not just reads, is what bounds fan-out over cycles: a model can
        # make a check exponential while reading few tuples.
        self.steps += n
        if self.steps > self.max_steps:
            raise AuthzLimitExceeded(f"authorization check needed more than {self.max_steps} "
                                     "evaluation steps; denied", limit="max_steps")

    def count_reads(self, n: int) -> None:
        self.reads += n
        if self.reads > self.max_reads:
            raise AuthzLimitExceeded(f"authorization check read more than {self.max_reads} "
                                     "tuples; denied")

    def check(self, ot: str, oid: str, rel: str, depth: int) -> bool:
        key = (ot, oid, rel)
        memo = self.memo.get(key)
        if memo is not None:
            return memo
        if self.srel is not None and self.srel == rel and self.sid == oid and self.st == ot:
            return True  # a userset always contains itself (OpenFGA: self-defining tuple)
        rewrite = self.rewrites.get((ot, rel))
        if rewrite is None:  # e.g. a stored userset whose relation the model dropped
            return False
        position = self.active.get(key)
        if position is not None:
            self.cycles += 1
            self.floor = min(self.floor, position)
            return False
        if depth > self.max_depth:
            raise AuthzDepthExceeded(f"authorization check exceeded the resolution depth "
                                     f"of {self.max_depth}; denied", depth=self.max_depth)
        self.step()
        outer_floor = self.floor
        self.floor = _NO_CYCLE
        position = len(self.active)
        self.active[key] = position
        try:
            result = self.rewrite(ot, oid, rel, rewrite, depth)
        finally:
            del self.active[key]
            floor = self.floor
            # Cycles back to this key are settled now; ones to keys above it are not.
            self.floor = min(outer_floor, floor if floor < position else _NO_CYCLE)
        if result or floor >= position:
            self.memo[key] = result
        return result

    def rewrite(self, ot: str, oid: str, rel: str, node: Rewrite, depth: int) -> bool:
        self.step()
        match node:
            case This():
                return self.direct(ot, oid, rel, node.allowed, depth)
            case Computed(relation):
                return self.check(ot, oid, relation, depth + 1)
            case TupleToUserset(tupleset, computed):
                return self.tuple_to_userset(ot, oid, tupleset, computed, depth)
            case Union(children):
                error: AuthzLimitExceeded | None = None
                for child in children:
                    try:
                        if self.rewrite(ot, oid, rel, child, depth):
                            return True
                    except AuthzLimitExceeded as exc:
                        error = exc  # another branch may still grant
                if error is not None:
                    raise error
                return False
            case Intersection(children):
                error = None
                for child in children:
                    try:
                        if not self.rewrite(ot, oid, rel, child, depth):
                            return False
                    except AuthzLimitExceeded as exc:
                        error = exc  # another branch may still deny
                if error is not None:
                    raise error
                return True
            case Difference(base, subtract):
                if not self.rewrite(ot, oid, rel, base, depth):
                    return False
                cycles = self.cycles
                if self.rewrite(ot, oid, rel, subtract, depth):
                    return False
                # A subtract that was False only because a cycle was cut short is unknown,
                # not False: deny, as OpenFGA does.
                return self.cycles == cycles
        raise AssertionError(node)  # pragma: no cover - the match above is exhaustive

    def direct(self, ot: str, oid: str, rel: str, allowed: frozenset[tuple[str, str | None]],
               depth: int) -> bool:
        tuples = self.reader.read(ot, oid, rel)
        if not isinstance(tuples, list | tuple):  # e.g. a generator from a SQL reader
            tuples = list(tuples)
        self.count_reads(len(tuples))
        st, sid, srel = self.st, self.sid, self.srel
        usersets: list[RelationTuple] = []
        for t in tuples:
            tr = t.subject_relation
            if t.subject_id == WILDCARD:
                # user:* grants every object subject of that type, never a userset.
                if t.subject_type == st and srel is None and (st, WILDCARD) in allowed:
                    return True
            elif (t.subject_type, tr) not in allowed:
                continue  # the model no longer allows this kind of subject here
            elif t.subject_id == sid and t.subject_type == st and tr == srel:
                return True
            elif tr is not None:
                usersets.append(t)
        error: AuthzLimitExceeded | None = None
        for t in usersets:
            self.step()
            try:
                if self.check(t.subject_type, t.subject_id, t.subject_relation or "",
                              depth + 1):
                    return True
            except AuthzLimitExceeded as exc:
                error = exc
        if error is not None:
            raise error
        return False

    def tuple_to_userset(self, ot: str, oid: str, tupleset: str, computed: str,
                         depth: int) -> bool:
        ts_rewrite = self.rewrites.get((ot, tupleset))
        if not isinstance(ts_rewrite, This):  # pragma: no cover - validation forbids it
            return False  # a non-direct tupleset cannot be read as objects: deny
        tuples = list(self.reader.read(ot, oid, tupleset))
        self.count_reads(len(tuples))
        error: AuthzLimitExceeded | None = None
        for t in tuples:
            if (t.subject_relation is not None or t.subject_id == WILDCARD
                    or (t.subject_type, None) not in ts_rewrite.allowed):
                continue
            self.step()
            try:
                if self.check(t.subject_type, t.subject_id, computed, depth + 1):
                    return True
            except AuthzLimitExceeded as exc:
                error = exc
        if error is not None:
            raise error
        return False
