"""Run OpenFGA's YAML matrix tests (``consolidated_1_1_tests.yaml``) against :class:`Checker`.

Each YAML test has stages; stages share one store, so tuples accumulate while the model
may change. Every assertion becomes an :class:`Outcome` of kind ``check``, ``list_objects``
or ``list_users``: passed, failed (with the reason) or skipped (conditions, which we do
not evaluate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

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

__all__ = ["CONFORMANCE_DIR", "KINDS", "Outcome", "load_tests", "run_test"]

CONFORMANCE_DIR = Path(__file__).parents[2].parent / "shared" / "conformance" / "openfga"
KINDS = ("check", "list_objects", "list_users")


@dataclass(frozen=True)
class Outcome:
    """The result of one assertion."""

    kind: str
    status: str  # "passed" | "failed" | "skipped"
    detail: str = ""


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

    def __init__(self, model: AuthzModel, store: MemoryTupleReader) -> None:
        self.model = model
        self.store = store

    def _checker(self, assertion: dict[str, Any]) -> Checker:
        reader = _contextual(self.model, self.store, assertion.get("contextualTuples"))
        return Checker(self.model, reader)

    def check(self, a: dict[str, Any]) -> bool:
        checker = self._checker(a)
        t = _tuple(a["tuple"])
        return checker.check(t.object_type, t.object_id, t.relation, t.subject_type,
                             t.subject_id, t.subject_relation)

    def list_objects(self, a: dict[str, Any]) -> list[str]:
        checker = self._checker(a)
        req = a["request"]
        ids = checker.list_objects(Subject.parse(req["user"]), req["relation"], req["type"])
        return [f"{req['type']}:{i}" for i in ids]

    def list_users(self, a: dict[str, Any]) -> list[str]:
        checker = self._checker(a)
        req = a["request"]
        obj = Subject.parse(req["object"])
        found: list[str] = []
        for flt in req["filters"]:
            stype, _, srel = flt.partition("#")
            found += map(str, checker.list_subjects(obj.type, obj.id, req["relation"], stype,
                                                    srel or None))
        return found


_KINDS_BY_KEY = {"checkAssertions": "check", "listObjectsAssertions": "list_objects",
                 "listUsersAssertions": "list_users"}


def run_test(test: dict[str, Any]) -> list[Outcome]:
    """Run every stage of one YAML test; returns one outcome per assertion."""
    store = MemoryTupleReader()
    outcomes: list[Outcome] = []
    for raw_stage in test["stages"]:
        stage = _Stage(parse_model(raw_stage["model"]), store)
        for raw in raw_stage.get("tuples") or ():
            store.add(_tuple(raw))
        for key, kind in _KINDS_BY_KEY.items():
            for a in raw_stage.get(key) or ():
                if _needs_conditions(raw_stage, a):
                    outcomes.append(Outcome(kind, "skipped", "needs conditions"))
                else:
                    outcomes.append(_judge(kind, a, partial(getattr(stage, kind), a)))
    return outcomes
