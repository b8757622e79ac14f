"""Semantic validation of a parsed model, in a deterministic order.

As OpenFGA's ``typesystem.NewAndValidate`` does, we walk types and relations in source
order and report the first problem, so the same model always yields the same message:

1. names (naming rule, reserved ``self``/``this``);
2. per relation: direct types exist and are not repeated, conditions exist, computed
   relations exist, ``X from Y`` has a direct-only ``Y`` and ``X`` exists on some type of ``Y``;
3. conditions that no relation uses;
4. cycles made only of computed relations (``a: b``, ``b: a``);
5. relations with no entry point: no set of tuples could ever grant them.
"""

from __future__ import annotations

import re

from nexus.authz._dsl import ParsedModel, syntax_error
from nexus.authz.schema import (
    Computed,
    Difference,
    Intersection,
    RelationDef,
    Rewrite,
    This,
    TupleToUserset,
    TypeDef,
    Union,
    walk,
)

__all__ = ["validate"]

_TYPE_NAME = re.compile(r"[^:#@*\s]{1,254}")
_RELATION_NAME = re.compile(r"[^:#@*\s]{1,50}")
_RESERVED = {"self", "this"}


def validate(parsed: ParsedModel) -> None:
    """Raise :class:`~nexus.errors.InvalidArgumentError` for the first semantic problem."""
    types = parsed.types
    for typedef in types.values():
        _check_names(typedef)
    used_conditions: set[str] = set()
    for typedef in types.values():
        for rel in typedef.relations.values():
            _check_relation(parsed, typedef, rel, used_conditions)
    for cond in parsed.conditions.values():
        if cond.name not in used_conditions:
            raise syntax_error(cond.line, f"condition {cond.name!r} is defined but not used")
    for typedef in types.values():
        for rel in typedef.relations.values():
            _check_computed_cycle(typedef, rel)
    entry = _EntryPoints(types)
    for typedef in types.values():
        for rel in typedef.relations.values():
            if not entry.has(typedef.name, rel.name, frozenset()):
                raise syntax_error(rel.line, f"{rel.name!r} is an impossible relation for "
                                   f"{typedef.name!r} (no entry point): no tuple can grant it")


def _check_names(typedef: TypeDef) -> None:
    if typedef.name in _RESERVED:
        raise syntax_error(typedef.line, "a type cannot be named 'self' or 'this'")
    if not _TYPE_NAME.fullmatch(typedef.name):
        raise syntax_error(typedef.line, f"type {typedef.name[:60]!r} does not match the "
                           "naming rule (1-254 characters, none of ':#@*' or whitespace)")
    for rel in typedef.relations.values():
        if rel.name in _RESERVED:
            raise syntax_error(rel.line, "a relation cannot be named 'self' or 'this'")
        if not _RELATION_NAME.fullmatch(rel.name):
            raise syntax_error(rel.line, f"relation {rel.name[:60]!r} of type {typedef.name!r} "
                               "does not match the naming rule (1-50 characters)")


def _check_relation(parsed: ParsedModel, typedef: TypeDef, rel: RelationDef,
                    used_conditions: set[str]) -> None:
    types, line = parsed.types, rel.line
    for node in walk(rel.rewrite):
        match node:
            case This(refs):
                seen: set[str] = set()
                for ref in refs:
                    if ref.type not in types:
                        raise syntax_error(line, f"{ref.type!r} is not a valid type")
                    if ref.relation and ref.relation not in types[ref.type].relations:
                        raise syntax_error(line, f"{ref.relation!r} is not a valid relation "
                                           f"for {ref.type!r}")
                    if str(ref) in seen:
                        raise syntax_error(line, f"the type restriction {str(ref)!r} is a "
                                           f"duplicate in the relation {rel.name!r}")
                    seen.add(str(ref))
                    if ref.condition:
                        if ref.condition not in parsed.conditions:
                            raise syntax_error(line, f"condition {ref.condition!r} is not "
                                               "defined")
                        used_conditions.add(ref.condition)
            case Computed(relation):
                if relation not in typedef.relations:
                    raise syntax_error(line, f"the relation {relation!r} does not exist "
                                       f"on type {typedef.name!r}")
            case TupleToUserset(tupleset, computed):
                _check_tupleset(parsed, typedef, rel, tupleset, computed)
            case Union(children) | Intersection(children):
                _check_no_duplicate(rel, children)
            case Difference(base, subtract):
                _check_no_duplicate(rel, (base, subtract))


def _check_no_duplicate(rel: RelationDef, children: tuple[Rewrite, ...]) -> None:
    # `viewer or viewer` is almost certainly a typo for another relation name.
    seen: list[Rewrite] = []
    for child in children:
        if not isinstance(child, This) and child in seen:
            raise syntax_error(rel.line, f"the partial relation definition {_show(child)!r} "
                               f"is a duplicate in the relation {rel.name!r}")
        seen.append(child)


def _show(node: Rewrite) -> str:
    match node:
        case Computed(relation):
            return relation
        case TupleToUserset(tupleset, computed):
            return f"{computed} from {tupleset}"
        case _:
            return "(...)"


def _check_tupleset(parsed: ParsedModel, typedef: TypeDef, rel: RelationDef,
                    tupleset: str, computed: str) -> None:
    line = rel.line
    ts = typedef.relations.get(tupleset)
    if ts is None:
        raise syntax_error(line, f"{tupleset!r} is not a valid relation for {typedef.name!r} "
                           f"(used in '{computed} from {tupleset}')")
    # The tupleset is read as plain object references, so it must be purely direct and
    # hold objects, not usersets or wildcards (OpenFGA: "allows only direct relation").
    if not isinstance(ts.rewrite, This):
        raise syntax_error(line, f"{tupleset!r} relation used inside 'from' allows only a "
                           "direct relation")
    if any(ref.relation or ref.wildcard for ref in ts.rewrite.directly_related):
        raise syntax_error(line, f"{tupleset!r} relation used inside 'from' may only hold "
                           "object types, not usersets or wildcards")
    if not any(computed in parsed.types[ref.type].relations
               for ref in ts.rewrite.directly_related):
        raise syntax_error(line, f"the {rel.name!r} relation definition on type "
                           f"{typedef.name!r} is not valid: {computed!r} does not exist on "
                           f"any type of {tupleset!r}")


def _check_computed_cycle(typedef: TypeDef, rel: RelationDef) -> None:
    """Follow ``define a: b`` links (a relation that is exactly another relation)."""
    chain = [rel.name]
    node: Rewrite = rel.rewrite
    while isinstance(node, Computed):
        if node.relation in chain:
            cycle = " -> ".join([*chain[chain.index(node.relation):], node.relation])
            raise syntax_error(rel.line, f"cycle of computed relations in type "
                               f"{typedef.name!r}: {cycle}")
        chain.append(node.relation)
        node = typedef.relations[node.relation].rewrite


class _EntryPoints:
    """Whether some tuples could ever grant ``type#relation`` (OpenFGA's hasEntrypoints)."""

    def __init__(self, types: dict[str, TypeDef]) -> None:
        self.types = types
        self.known: set[tuple[str, str]] = set()  # relations proven to have an entry point

    def has(self, type_name: str, relation: str, path: frozenset[tuple[str, str]]) -> bool:
        key = (type_name, relation)
        if key in self.known:
            return True
        if key in path:  # a loop back to a relation being proven grants nothing by itself
            return False
        ok = self._rewrite(type_name, self.types[type_name].relations[relation].rewrite,
                           path | {key})
        if ok:
            self.known.add(key)
        return ok

    def _rewrite(self, type_name: str, node: Rewrite, path: frozenset[tuple[str, str]]) -> bool:
        match node:
            case This(refs):
                return any(ref.relation is None or self.has(ref.type, ref.relation, path)
                           for ref in refs)
            case Computed(relation):
                return self.has(type_name, relation, path)
            case TupleToUserset(tupleset, computed):
                ts = self.types[type_name].relations[tupleset].rewrite
                assert isinstance(ts, This)  # checked by _check_tupleset
                return any(computed in self.types[ref.type].relations
                           and self.has(ref.type, computed, path)
                           for ref in ts.directly_related)
            case Union(children):
                return any(self._rewrite(type_name, c, path) for c in children)
            case Intersection(children):
                return all(self._rewrite(type_name, c, path) for c in children)
            case Difference(base, subtract):
                return (self._rewrite(type_name, base, path)
                        and self._rewrite(type_name, subtract, path))
        raise AssertionError(node)  # pragma: no cover - the match above is exhaustive
