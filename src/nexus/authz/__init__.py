"""Relationship-based access control (Zanzibar / OpenFGA style), as pure logic.

- :func:`parse_model` turns OpenFGA DSL (schema 1.1) into an immutable :class:`AuthzModel`;
- a :class:`TupleReader` gives read access to relation tuples (:class:`MemoryTupleReader`,
  :class:`LayeredTupleReader` for contextual tuples, :class:`PathParentReader` for
  parents derived from paths);
- :class:`Checker` answers check / batch check / expand / list objects / list subjects;
- :func:`default_model` is the model a server starts with (``default.fga``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from nexus.authz.check import Checker, CheckRequest
from nexus.authz.errors import AuthzDepthExceeded, AuthzLimitExceeded
from nexus.authz.model import AuthzModel, parse_model
from nexus.authz.reader import (
    LayeredTupleReader,
    MemoryTupleReader,
    PathParentReader,
    RelationTuple,
    Subject,
    TupleReader,
    parent_path,
)

__all__ = [
    "AuthzDepthExceeded",
    "AuthzLimitExceeded",
    "AuthzModel",
    "CheckRequest",
    "Checker",
    "LayeredTupleReader",
    "MemoryTupleReader",
    "PathParentReader",
    "RelationTuple",
    "Subject",
    "TupleReader",
    "default_model",
    "default_model_text",
    "parent_path",
    "parse_model",
]


def default_model_text() -> str:
    """The DSL of the server's default model (``nexus/authz/default.fga``)."""
    return resources.files(__package__).joinpath("default.fga").read_text(encoding="utf-8")


@cache
def default_model() -> AuthzModel:
    """The parsed default model. Parsed on first use, not at import; the result is
    immutable, so sharing one instance is safe."""
    return parse_model(default_model_text())
