"""Parse the OpenFGA modeling language (schema 1.1) into a validated :class:`AuthzModel`.

Parsing happens when a model is written, never during a check::

    model = parse_model(text)            # raises InvalidArgumentError("... line 7: ...")
    model.relation("file", "can_read").rewrite
    model.to_json()                      # OpenFGA's JSON shape

The node classes are defined in :mod:`nexus.authz.schema` and re-exported here.
"""

from __future__ import annotations

from nexus.authz._dsl import parse_dsl
from nexus.authz._validate import validate
from nexus.authz.schema import (
    WILDCARD,
    AuthzModel,
    Computed,
    Condition,
    Difference,
    Intersection,
    RelationDef,
    RelationRef,
    Rewrite,
    This,
    TupleToUserset,
    TypeDef,
    Union,
)

__all__ = [
    "WILDCARD",
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
    "parse_model",
]


def parse_model(text: str) -> AuthzModel:
    """Parse and validate DSL ``text``.

    Raises :class:`nexus.errors.InvalidArgumentError` whose message names the 1-based
    line and the problem (syntax, unknown type or relation, bad ``from``, duplicate,
    computed cycle, relation with no entry point). The result is immutable.
    """
    parsed = parse_dsl(text)
    validate(parsed)
    return AuthzModel(parsed.schema_version, parsed.types, parsed.conditions)
