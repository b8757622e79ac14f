"""Parameter validation at the RPC edge, generated once per method from its signature.

Every method's keyword parameters are checked against the service method's own type
annotations (pydantic, strict: no ``"1"`` → ``1``, no ``True`` as an int) and against
generic bounds (string length, list size, nesting depth, integer magnitude, finite
floats) before the service sees them, so junk input is an :class:`InvalidArgumentError`
naming the parameter instead of reaching SQL or code as a 500. The checks never change
a value: the service still receives exactly what the caller sent.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from nexus.errors import InvalidArgumentError, InvalidPathError

__all__ = ["LIMITS", "Limits", "ParamChecker", "checker_for"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds every parameter value must keep, whatever its annotation."""

    max_string: int = 4_096
    #: Paths: paths.normalize allows 4,096 UTF-8 bytes after NFC, and a decomposed
    #: spelling of a valid path can be several times longer before it.
    max_path: int = 16_384
    #: Documents that are legitimately long strings (an authorization model's DSL).
    max_document: int = 1_048_576
    max_items: int = 10_000
    max_depth: int = 32
    max_int: int = 2**63 - 1


LIMITS = Limits()
#: Parameters whose string value is a document (an authorization model's DSL).
_DOCUMENTS = frozenset({"model"})
_STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True)
_LAX = ConfigDict(strict=False, arbitrary_types_allowed=True)


#: Parameters that are virtual paths: a bad value is an ``invalid_path`` as it always was
#: (clients match on that code), with ``details.param`` naming it like any other.
_PATHS = frozenset({"path", "src", "dst"})


def _bad(method: str, param: str, why: str) -> InvalidArgumentError:
    message = f"{method}: parameter {param!r} {why}"
    if param in _PATHS:
        error: InvalidArgumentError = InvalidPathError(message, rule="type")
        error.details.update(method=method, param=param)
        return error
    return InvalidArgumentError(message, method=method, param=param)


#: Integers the service clamps itself (a read past the end is empty, whatever the offset).
_CLAMPED = frozenset({"offset", "length"})


#: Parameters that carry paths inside references (``["file", "/tenants/…"]``).
_REFS = frozenset({"object", "subject", "checks"})


def _max_string(param: str, limits: Limits, *, nested: bool = False) -> int:
    # Within these bounds paths.normalize decides, and its refusal names the rule.
    if param in _DOCUMENTS:
        return limits.max_document
    if param in _PATHS or param == "archive" or (nested and param in _REFS):
        return limits.max_path
    return limits.max_string


def _check_bounds(method: str, param: str, value: Any, limits: Limits) -> None:
    """Walk ``value`` iteratively (a recursive walk is what deep nesting attacks)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            max_string = _max_string(param, limits, nested=depth > 0)
            if len(item) > max_string:
                raise _bad(method, param, f"is longer than {max_string} characters")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > limits.max_int and param not in _CLAMPED:
                raise _bad(method, param, "is out of range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _bad(method, param, "must be a finite number")
        elif isinstance(item, list | tuple | dict):
            if depth >= limits.max_depth:
                raise _bad(method, param, f"is nested deeper than {limits.max_depth}")
            if len(item) > limits.max_items:
                raise _bad(method, param, f"has more than {limits.max_items} items")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


class ParamChecker:
    """The validators of one method's parameters, built once from its signature."""

    def __init__(self, method: str, function: Any, limits: Limits = LIMITS) -> None:
        self.method = method
        self.limits = limits
        self.signature = inspect.signature(function)
        hints = _hints(function)
        self.adapters: dict[str, TypeAdapter[Any] | None] = {}
        #: Exact scalar types an annotation accepts: the hot path skips pydantic for them.
        self.fast: dict[str, frozenset[type]] = {}
        for name in list(self.signature.parameters)[2:]:  # skip self and principal
            annotation = hints.get(name, Any)
            self.adapters[name] = _adapter(annotation)
            self.fast[name] = _scalar_types(annotation)

    def check(self, params: dict[str, Any], principal: Any) -> None:
        """Raise :class:`InvalidArgumentError` naming the first bad parameter."""
        # Types first, then arity: a wrong value is named even when others are missing.
        for name, value in params.items():
            if type(value) in self.fast.get(name, ()):  # exact type: bool is not int here
                longest = _max_string(name, self.limits)
                if type(value) is str and len(value) > longest:
                    raise _bad(self.method, name, f"is longer than {longest} characters")
                if type(value) is int and abs(value) > self.limits.max_int and (
                        name not in _CLAMPED):
                    raise _bad(self.method, name, "is out of range")
                continue
            _check_bounds(self.method, name, value, self.limits)
            adapter = self.adapters.get(name)
            if adapter is None:
                continue
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise _bad(self.method, name, f"is invalid: {first['msg']}") from None
        try:
            self.signature.bind(None, principal, **params)
        except TypeError as exc:
            raise InvalidArgumentError(f"{self.method}: {exc}", method=self.method) from None

    def max_string(self, name: str) -> int:
        """The longest string ``name`` may be."""
        return _max_string(name, self.limits)

    def json_schema(self, name: str) -> dict[str, Any]:
        """The JSON schema of one parameter (``{}`` where anything goes)."""
        adapter = self.adapters.get(name)
        if adapter is None:
            return {}
        try:
            return adapter.json_schema()
        except Exception:  # noqa: BLE001 - a type without a JSON form documents as "any"
            return {}


def _hints(function: Any) -> dict[str, Any]:
    """Resolve annotations; a name that only exists under TYPE_CHECKING becomes Any."""
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - fall back to one parameter at a time
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(function, "__globals__", {})
    for name, text in getattr(function, "__annotations__", {}).items():
        try:
            hints[name] = eval(text, namespace) if isinstance(text, str) else text  # noqa: S307
        except Exception:  # noqa: BLE001 - unresolvable: bounds-only
            hints[name] = Any
    return hints


_SCALARS = (str, bool, int, type(None))


def _scalar_types(annotation: Any) -> frozenset[type]:
    """``str | None`` → {str, NoneType}; empty unless every member is a plain scalar."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else (annotation,)
    if all(m in _SCALARS for m in members):
        return frozenset(members)
    return frozenset()


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    if annotation is Any:
        return None
    # Datetimes arrive as ISO strings over the wire; strict mode would refuse them.
    config = _LAX if "datetime" in repr(annotation) else _STRICT
    try:
        return TypeAdapter(annotation, config=config)
    except Exception:  # noqa: BLE001 - a type pydantic cannot model is checked for bounds only
        return None


@functools.cache
def checker_for(method: str, function: Any) -> ParamChecker:
    """The (cached) checker of ``method``, whose service function is ``function``."""
    return ParamChecker(method, function)
