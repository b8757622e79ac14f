"""Run OpenFGA's YAML matrix tests (``consolidated_1_1_tests.yaml``) against :class:`Checker`.

Each YAML test has stages; stages share one store, so tuples accumulate while the model
may change. Every assertion becomes an :class:`Outcome` of kind ``check``, ``list_objects``
or ``list_users``: passed, failed (with the reason) or skipped (conditions, which we do
not evaluate).

The store is pluggable (:class:`MatrixStore`): :class:`MemoryMatrixStore` by default, the
SQL tuple store in ``test_conformance_sql.py``, so every backend runs the same runner.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from nexus.authz.check import Checker
from nexus.authz.model import AuthzModel, parse_model
from nexus.authz.reader import (
    LayeredTupleReader,
    MemoryTupleReader,
    RelationTuple,
    Subject,
    TupleReader,
)
from nexus.errors import InvalidArgumentError

__all__ = ["CONFORMANCE_DIR", "KINDS", "MISSING_DATA", "MatrixStore", "MemoryMatrixStore",
           "Outcome", "load_tests", "run_test"]

#: OpenFGA's own test data (Apache-2.0), kept beside the checkout, not in it; point
#: NEXUS_CONFORMANCE_DIR elsewhere to use another copy.
CONFORMANCE_DIR = Path(os.environ.get("NEXUS_CONFORMANCE_DIR") or
                       Path(__file__).parents[2].parent / "shared" / "conformance" / "openfga")
#: Why the conformance tests skip, and where their data comes from.
MISSING_DATA = (
    f"OpenFGA conformance data not found at {CONFORMANCE_DIR} (set NEXUS_CONFORMANCE_DIR): "
    "it is consolidated_1_1_tests.yaml and abac_tests.yaml from github.com/openfga/openfga "
    "assets/tests/ (commit da9354f7) and language-transformer/ plus "
    "dsl-*-validation-cases.yaml from github.com/openfga/language tests/data/ (commit "
    "db371bf4), copied unchanged")
KINDS = ("check", "list_objects", "list_users")


@dataclass(frozen=True)
class Outcome:
    """The result of one assertion."""

    kind: str
    status: str  # "passed" | "failed" | "skipped"
    detail: str = ""


class MatrixStore(Protocol):
    """The tuple store of one YAML test: written stage by stage, read per assertion."""

    def write(self, tuples: Sequence[RelationTuple]) -> None:
        """Add a stage's tuples (a tuple already stored is kept once)."""
        ...

    def reader(self) -> AbstractContextManager[TupleReader]:
        """A reader over everything written so far, valid inside the ``with`` block."""
        ...


class MemoryMatrixStore:
    """:class:`MatrixStore` over a :class:`MemoryTupleReader`."""

    def __init__(self) -> None:
        self._tuples = MemoryTupleReader()

    def write(self, tuples: Sequence[RelationTuple]) -> None:
        for t in tuples:
            self._tuples.add(t)

    @contextmanager
    def reader(self) -> Iterator[TupleReader]:
        yield self._tuples


def load_tests(path: Path) -> list[dict[str, Any]]:
    """The ``tests`` list of a matrix YAML file."""
    import yaml

    with path.open(encoding="utf-8") as f:
        return list(yaml.safe_load(f)["tests"])


def _tuple(raw: dict[str, Any]) -> RelationTuple:
    return RelationTuple.parse(raw["object"], raw["relation"], raw["user"])


def _contextual(model: AuthzModel, base: TupleReader,
                raw: Iterable[dict[str, Any]] | None) -> TupleReader:
    """Contextual tuples are validated against the model (OpenFGA error 2027) and layered
    on top of the store for this one request."""
    extra = [_tuple(t) for t in raw or ()]
    for t in extra:
        model.validate_tuple(t.object_type, t.relation, t.subject_type, t.subject_id,
                             t.subject_relation)
    return LayeredTupleReader(base, extra) if extra else base


def _needs_conditions(stage: dict[str, Any], assertion: dict[str, Any]) -> bool:
    model = stage.get("model") or ""
    return bool(" with " in model or "condition" in model
                or any(t.get("condition") for t in stage.get("tuples") or ())
                or assertion.get("context")
                or any(t.get("condition") for t in assertion.get("contextualTuples") or ()))


def _judge(kind: str, assertion: dict[str, Any], run: Callable[[], Any]) -> Outcome:
    """Run ``run()``; compare with ``expectation`` or expect an error for ``errorCode``."""
    wants_error = "errorCode" in assertion
    try:
        got = run()
    except InvalidArgumentError as exc:
        if wants_error:
            return Outcome(kind, "passed")
        return Outcome(kind, "failed", f"raised {exc!r}")
    if wants_error:
        return Outcome(kind, "failed", f"expected error {assertion['errorCode']}, got {got!r}")
    expected = assertion.get("expectation")
    if kind != "check":
        expected = sorted(set(expected or ()))
        got = sorted(set(got))
    if got == expected:
        return Outcome(kind, "passed")
    return Outcome(kind, "failed", f"expected {expected!r}, got {got!r}")


class _Stage:
    """One stage's model over the accumulated store; one method per assertion kind."""

    def __init__(self, model: AuthzModel, store: MatrixStore) -> None:
        self.model = model
        self.store = store

    @contextmanager
    def _checker(self, assertion: dict[str, Any]) -> Iterator[Checker]:
        with self.store.reader() as base:
            reader = _contextual(self.model, base, assertion.get("contextualTuples"))
            yield Checker(self.model, reader)

    def check(self, a: dict[str, Any]) -> bool:
        t = _tuple(a["tuple"])
        with self._checker(a) as checker:
            return checker.check(t.object_type, t.object_id, t.relation, t.subject_type,
                                 t.subject_id, t.subject_relation)

    def list_objects(self, a: dict[str, Any]) -> list[str]:
        req = a["request"]
        with self._checker(a) as checker:
            ids = checker.list_objects(Subject.parse(req["user"]), req["relation"],
                                       req["type"])
        return [f"{req['type']}:{i}" for i in ids]

    def list_users(self, a: dict[str, Any]) -> list[str]:
        req = a["request"]
        obj = Subject.parse(req["object"])
        found: list[str] = []
        with self._checker(a) as checker:
            for flt in req["filters"]:
                stype, _, srel = flt.partition("#")
                found += map(str, checker.list_subjects(obj.type, obj.id, req["relation"],
                                                        stype, srel or None))
        return found


_KINDS_BY_KEY = {"checkAssertions": "check", "listObjectsAssertions": "list_objects",
                 "listUsersAssertions": "list_users"}


def run_test(test: dict[str, Any], store: MatrixStore | None = None) -> list[Outcome]:
    """Run every stage of one YAML test on ``store`` (a fresh, empty one per test; memory
    by default); returns one outcome per assertion."""
    store = MemoryMatrixStore() if store is None else store
    outcomes: list[Outcome] = []
    for raw_stage in test["stages"]:
        stage = _Stage(parse_model(raw_stage["model"]), store)
        store.write([_tuple(raw) for raw in raw_stage.get("tuples") or ()])
        for key, kind in _KINDS_BY_KEY.items():
            for a in raw_stage.get(key) or ():
                if _needs_conditions(raw_stage, a):
                    outcomes.append(Outcome(kind, "skipped", "needs conditions"))
                else:
                    outcomes.append(_judge(kind, a, partial(getattr(stage, kind), a)))
    return outcomes
