"""The parsed authorization model: frozen dataclasses, indexed by type and relation.

A relation's meaning is a *rewrite tree* (Zanzibar's "userset rewrite") built from six
node kinds, mirroring OpenFGA's protobuf ``Userset``:

- :class:`This` — the tuples stored directly on the object for this relation, restricted
  to the subject kinds in ``directly_related`` (``[user, user:*, group#member]``);
- :class:`Computed` — another relation on the same object (``define viewer: editor``);
- :class:`TupleToUserset` — ``viewer from parent``: follow the ``parent`` tuples, then
  evaluate ``viewer`` on each parent;
- :class:`Union`, :class:`Intersection`, :class:`Difference` — ``or``, ``and``, ``but not``.

The model is data: it is built once when a model is written (see :func:`nexus.authz.model.
parse_model`) and never re-parsed during a check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from nexus.errors import InvalidArgumentError

__all__ = [
    "AuthzModel",
    "Computed",
    "Condition",
    "Difference",
    "Intersection",
    "RelationDef",
    "RelationRef",
    "Rewrite",
    "This",
    "TupleToUserset",
    "TypeDef",
    "Union",
    "WILDCARD",
]

#: The subject id of a public grant: ``user:*`` means "every user".
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class RelationRef:
    """A direct type: ``user``, ``user:*``, ``group#member`` or ``user with cond``."""

    type: str
    relation: str | None = None
    wildcard: bool = False
    condition: str | None = None

    def key(self) -> tuple[str, str | None]:
        """The (subject type, subject relation) a stored tuple must have to match; ``*`` for
        a wildcard. Conditions do not change which tuples match, only whether they hold."""
        return (self.type, WILDCARD if self.wildcard else self.relation)

    def __str__(self) -> str:
        text = f"{self.type}:*" if self.wildcard else self.type
        if self.relation:
            text += f"#{self.relation}"
        return f"{text} with {self.condition}" if self.condition else text


@dataclass(frozen=True, slots=True)
class This:
    """Directly assigned subjects; ``allowed`` is precomputed for O(1) tuple filtering."""

    directly_related: tuple[RelationRef, ...]
    allowed: frozenset[tuple[str, str | None]] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        # Derived once here so the checker's hot loop only does a set lookup per tuple.
        object.__setattr__(self, "allowed", frozenset(r.key() for r in self.directly_related))


@dataclass(frozen=True, slots=True)
class Computed:
    """Another relation of the same object."""

    relation: str


@dataclass(frozen=True, slots=True)
class TupleToUserset:
    """``computed from tupleset``: ``computed`` evaluated on every object in ``tupleset``."""

    tupleset: str
    computed: str


@dataclass(frozen=True, slots=True)
class Union:
    """Any child grants (``or``)."""

    children: tuple[Rewrite, ...]


@dataclass(frozen=True, slots=True)
class Intersection:
    """Every child must grant (``and``)."""

    children: tuple[Rewrite, ...]


@dataclass(frozen=True, slots=True)
class Difference:
    """``base but not subtract``."""

    base: Rewrite
    subtract: Rewrite


Rewrite: TypeAlias = This | Computed | TupleToUserset | Union | Intersection | Difference


@dataclass(frozen=True, slots=True)
class RelationDef:
    """One ``define``: its name, rewrite tree and the source line (for error messages)."""

    name: str
    rewrite: Rewrite
    line: int = 0

    @property
    def directly_related(self) -> tuple[RelationRef, ...]:
        """Every direct type anywhere in the rewrite (OpenFGA keeps one list per relation)."""
        return tuple(ref for node in walk(self.rewrite) if isinstance(node, This)
                     for ref in node.directly_related)


@dataclass(frozen=True, slots=True)
class TypeDef:
    """A ``type`` block and its relations, in source order."""

    name: str
    relations: Mapping[str, RelationDef]
    line: int = 0


@dataclass(frozen=True, slots=True)
class Condition:
    """A ``condition`` block, kept as text: conditions are parsed but not evaluated."""

    name: str
    parameters: tuple[tuple[str, str], ...]
    expression: str
    line: int = 0


def walk(node: Rewrite) -> Iterator[Rewrite]:
    """Every node of a rewrite tree, parents before children."""
    yield node
    match node:
        case Union(children) | Intersection(children):
            for child in children:
                yield from walk(child)
        case Difference(base, subtract):
            yield from walk(base)
            yield from walk(subtract)
        case _:
            pass


@dataclass(frozen=True, slots=True)
class AuthzModel:
    """A validated model. Build it with :func:`nexus.authz.model.parse_model`."""

    schema_version: str
    types: Mapping[str, TypeDef]
    conditions: Mapping[str, Condition] = field(default_factory=dict)
    #: ``(type, relation) -> rewrite``, flattened once per model: checkers are built per
    #: request, and a model may hold thousands of relations.
    rewrites: Mapping[tuple[str, str], Rewrite] = field(init=False, repr=False,
                                                        compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rewrites", {
            (t.name, r.name): r.rewrite for t in self.types.values()
            for r in t.relations.values()})

    def relation(self, object_type: str, relation: str) -> RelationDef:
        """The definition of ``object_type#relation``.

        Raises :class:`InvalidArgumentError` if the type or the relation is unknown, so that
        callers fail closed on a request the model cannot answer.
        """
        typedef = self.types.get(object_type)
        if typedef is None:
            raise InvalidArgumentError(f"unknown type {object_type!r}", type=object_type)
        rel = typedef.relations.get(relation)
        if rel is None:
            raise InvalidArgumentError(
                f"type {object_type!r} has no relation {relation!r}",
                type=object_type, relation=relation,
            )
        return rel

    def has_relation(self, object_type: str, relation: str) -> bool:
        """Whether ``object_type#relation`` is defined."""
        typedef = self.types.get(object_type)
        return typedef is not None and relation in typedef.relations

    @property
    def uses_conditions(self) -> bool:
        """Whether any direct type carries ``with <condition>`` (the checker ignores them)."""
        return any(ref.condition for t in self.types.values() for r in t.relations.values()
                   for ref in r.directly_related)

    def validate_tuple(
        self, object_type: str, relation: str, subject_type: str, subject_id: str,
        subject_relation: str | None = None,
    ) -> None:
        """Reject a tuple that this model could never use (as OpenFGA does on write).

        The relation must exist and be directly assignable, and the subject kind
        (``type``, ``type:*`` or ``type#relation``) must be one of its direct types.
        Raises :class:`InvalidArgumentError` naming the problem.
        """
        rel = self.relation(object_type, relation)
        if subject_type not in self.types:
            raise InvalidArgumentError(f"unknown subject type {subject_type!r}")
        if subject_relation is not None and not self.has_relation(subject_type, subject_relation):
            raise InvalidArgumentError(
                f"type {subject_type!r} has no relation {subject_relation!r}")
        if subject_id == WILDCARD and subject_relation is not None:
            raise InvalidArgumentError("a wildcard subject cannot have a relation")
        key = (subject_type, WILDCARD if subject_id == WILDCARD else subject_relation)
        if key not in {ref.key() for ref in rel.directly_related}:
            shown = f"{subject_type}:*" if subject_id == WILDCARD else (
                f"{subject_type}#{subject_relation}" if subject_relation else subject_type)
            raise InvalidArgumentError(
                f"{object_type}#{relation} does not allow subjects of type {shown!r}")

    def to_json(self) -> dict[str, Any]:
        """The model in OpenFGA's JSON shape (``schema_version``, ``type_definitions``,
        ``conditions``), for comparison with OpenFGA and for the wire."""
        out: dict[str, Any] = {"schema_version": self.schema_version}
        if self.types:
            out["type_definitions"] = [_type_json(t) for t in self.types.values()]
        if self.conditions:
            out["conditions"] = {c.name: _condition_json(c) for c in self.conditions.values()}
        return out


def rewrite_json(node: Rewrite) -> dict[str, Any]:
    """One rewrite tree as OpenFGA's ``Userset`` JSON."""
    match node:
        case This():
            return {"this": {}}
        case Computed(relation):
            return {"computedUserset": {"relation": relation}}
        case TupleToUserset(tupleset, computed):
            return {"tupleToUserset": {"tupleset": {"relation": tupleset},
                                       "computedUserset": {"relation": computed}}}
        case Union(children):
            return {"union": {"child": [rewrite_json(c) for c in children]}}
        case Intersection(children):
            return {"intersection": {"child": [rewrite_json(c) for c in children]}}
        case Difference(base, subtract):
            return {"difference": {"base": rewrite_json(base),
                                   "subtract": rewrite_json(subtract)}}
    raise AssertionError(node)  # pragma: no cover - the match above is exhaustive


def _ref_json(ref: RelationRef) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ref.type}
    if ref.relation:
        out["relation"] = ref.relation
    if ref.wildcard:
        out["wildcard"] = {}
    if ref.condition:
        out["condition"] = ref.condition
    return out


def _type_json(typedef: TypeDef) -> dict[str, Any]:
    relations = {name: rewrite_json(r.rewrite) for name, r in typedef.relations.items()}
    metadata = None
    if typedef.relations:
        metadata = {"relations": {
            name: {"directly_related_user_types": [_ref_json(x) for x in r.directly_related]}
            for name, r in typedef.relations.items()
        }}
    return {"type": typedef.name, "relations": relations, "metadata": metadata}


def _param_json(type_text: str) -> dict[str, Any]:
    base, _, generic = type_text.partition("<")
    out: dict[str, Any] = {"type_name": f"TYPE_NAME_{base.strip().upper()}"}
    if generic:
        out["generic_types"] = [_param_json(generic.rstrip(">").strip())]
    return out


def _condition_json(cond: Condition) -> dict[str, Any]:
    return {"name": cond.name, "expression": cond.expression,
            "parameters": {name: _param_json(t) for name, t in cond.parameters}}
