"""Semantic validation of a parsed model, in a deterministic order.

As OpenFGA's ``typesystem.NewAndValidate`` does, we walk types and relations in source
order and report the first problem, so the same model always yields the same message:

1. names (naming rule, reserved ``self``/``this``);
2. per relation: direct types exist and are not repeated, conditions exist, computed
   relations exist, ``X from Y`` has a direct-only ``Y`` and ``X`` exists on some type of ``Y``;
3. conditions that no relation uses;
4. cycles made only of computed relations (``a: b``, ``b: a``);
5. relations with no entry point: no set of tuples could ever grant them.

A relation deeper than a check may resolve (``a1: [user]`` ... ``a600: [doc#a599]``) is
valid, as in OpenFGA (whose suite has such a model): a userset subject still reaches it
in one step, and a check that would go deeper is denied with the depth limit.

Every step is linear in the size of the model (one pass, memoised graph walks), and the
only recursion follows a rewrite tree, whose nesting the parser bounds (``MAX_NESTING``):
a tenant's model write must not cost more than its size, whatever its shape.
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
    checked_ttu: set[tuple[str, str, str]] = set()
    for typedef in types.values():
        for rel in typedef.relations.values():
            _check_relation(parsed, typedef, rel, used_conditions, checked_ttu)
    for cond in parsed.conditions.values():
        if cond.name not in used_conditions:
            raise syntax_error(cond.line, f"condition {cond.name!r} is defined but not used")
    _check_computed_cycles(types)
    entry = _EntryPoints(types)
    for typedef in types.values():
        for rel in typedef.relations.values():
            if not entry.has(typedef.name, rel.name):
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
                    used_conditions: set[str], checked_ttu: set[tuple[str, str, str]]) -> None:
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
                if (typedef.name, tupleset, computed) not in checked_ttu:
                    _check_tupleset(parsed, typedef, rel, tupleset, computed)
                    # Once per distinct `X from Y` of a type: the check loops over Y's types.
                    checked_ttu.add((typedef.name, tupleset, computed))
            case Union(children) | Intersection(children):
                _check_no_duplicate(rel, children)
            case Difference(base, subtract):
                _check_no_duplicate(rel, (base, subtract))


def _check_no_duplicate(rel: RelationDef, children: tuple[Rewrite, ...]) -> None:
    # `viewer or viewer` is almost certainly a typo for another relation name.
    seen: set[Rewrite] = set()  # a set, not a list: a union may have thousands of children
    for child in children:
        if not isinstance(child, This) and child in seen:
            raise syntax_error(rel.line, f"the partial relation definition {_show(child)!r} "
                               f"is a duplicate in the relation {rel.name!r}")
        seen.add(child)


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


def _check_computed_cycles(types: dict[str, TypeDef]) -> None:
    """Reject ``define a: b``, ``b: a``: links of relations that are exactly another one.

    Each relation has at most one such link, so one walk over the links, remembering
    which relations are settled, visits every relation once (instead of re-following the
    chain from every relation, which is quadratic in its length).
    """
    for typedef in types.values():
        settled: set[str] = set()
        for rel in typedef.relations.values():
            chain: dict[str, int] = {}  # relation -> position in the walk from ``rel``
            name: str | None = rel.name
            while name is not None and name not in settled:
                if name in chain:
                    names = list(chain)
                    cycle = " -> ".join([*names[chain[name]:], name])
                    raise syntax_error(rel.line, f"cycle of computed relations in type "
                                       f"{typedef.name!r}: {cycle}")
                chain[name] = len(chain)
                node = typedef.relations[name].rewrite
                name = node.relation if isinstance(node, Computed) else None
            settled.update(chain)


class _EntryPoints:
    """Which relations some set of tuples could grant (OpenFGA's ``hasEntrypoints``).

    A relation has an entry point when its rewrite does, where a direct type without a
    relation (``[user]``, ``[user:*]``) is one, ``type#rel`` and a computed ``rel`` have
    one if that relation does, ``X from Y`` if ``X`` does on some type of ``Y``, ``or``
    if any child does and ``and`` / ``but not`` if every child (base and subtract) does.
    That is the least fixpoint of a monotone system, so instead of a search that re-proves
    relations along every path (exponential on cyclic models), we propagate "has an entry
    point" forward from the direct types over an and/or graph: each edge is followed
    once, linear in the size of the model.
    """

    def __init__(self, types: dict[str, TypeDef]) -> None:
        self.types = types
        self.need: list[int] = []  # children still to prove: 1 for "or", all for "and"
        self.parents: list[list[int]] = []
        self.seeds: list[int] = []
        self.relation_node: dict[tuple[str, str], int] = {}
        self.ttu_node: dict[tuple[str, str, str], int] = {}
        for typedef in types.values():
            for rel in typedef.relations.values():
                self.relation_node[(typedef.name, rel.name)] = self._node(1)
        for typedef in types.values():
            for rel in typedef.relations.values():
                root = self._build(typedef.name, rel.rewrite)
                self.parents[root].append(self.relation_node[(typedef.name, rel.name)])
        self.proven = self._propagate()

    def has(self, type_name: str, relation: str) -> bool:
        return self.proven[self.relation_node[(type_name, relation)]]

    def _node(self, need: int) -> int:
        self.need.append(need)
        self.parents.append([])
        return len(self.need) - 1

    def _build(self, type_name: str, node: Rewrite) -> int:
        # Recursion is bounded by the parser's nesting limit (MAX_NESTING).
        match node:
            case This(refs):
                this = self._node(1)
                for ref in refs:
                    if ref.relation is None:
                        self.seeds.append(this)
                    else:
                        self.parents[self.relation_node[(ref.type, ref.relation)]].append(this)
                return this
            case Computed(relation):
                return self.relation_node[(type_name, relation)]
            case TupleToUserset(tupleset, computed):
                key = (type_name, tupleset, computed)
                ttu = self.ttu_node.get(key)
                if ttu is None:  # the same `X from Y` anywhere in a type is one node
                    ttu = self.ttu_node[key] = self._node(1)
                    ts = self.types[type_name].relations[tupleset].rewrite
                    assert isinstance(ts, This)  # checked by _check_tupleset
                    for ref in ts.directly_related:
                        target = self.relation_node.get((ref.type, computed))
                        if target is not None:
                            self.parents[target].append(ttu)
                return ttu
            case Union(children):
                parent = self._node(1)
            case Intersection(children):
                parent = self._node(len(children))
            case Difference(base, subtract):
                children = (base, subtract)
                parent = self._node(2)
        for child in children:
            self.parents[self._build(type_name, child)].append(parent)
        return parent

    def _propagate(self) -> list[bool]:
        proven = [False] * len(self.need)
        need = list(self.need)
        stack = []
        for seed in self.seeds:
            if not proven[seed]:
                proven[seed] = True
                stack.append(seed)
        while stack:
            node = stack.pop()
            for parent in self.parents[node]:
                need[parent] -= 1
                if need[parent] <= 0 and not proven[parent]:
                    proven[parent] = True
                    stack.append(parent)
        return proven
