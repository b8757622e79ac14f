"""Model writes have bounded cost (issue 14, "Budgets, not hopes"): a tenant administrator's
model may be large or oddly shaped, but validating it is linear and never recursive in
its size, a model over the size bounds is a 4xx naming the bound, and the checks such a
model allows stay 4xx denials, never a RecursionError (500). No timing here: the work is
shown bounded by the stack it may use and by the errors; timings are in bench/rebac.py."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import nexus
from nexus.authz import (
    Checker,
    MemoryTupleReader,
    PathParentReader,
    RelationTuple,
    default_model,
    default_model_text,
    parse_model,
)
from nexus.authz._dsl import (
    MAX_MODEL_BYTES,
    MAX_NESTING,
    MAX_RELATIONS_PER_TYPE,
    MAX_REWRITE_NODES,
    MAX_TYPES,
)
from nexus.errors import InvalidArgumentError, LimitExceededError

HEAD = "model\n  schema 1.1\ntype user\n"


def _doc(relations: list[str], head: str = HEAD) -> str:
    return head + "type doc\n  relations\n" + "".join(f"    define {r}\n" for r in relations)


def chained(n: int) -> list[str]:
    """``r0: r1``, ``r1: r2`` … ``r{n-1}: [user]``: every relation has an entry point only
    through all the later ones (the shape that made validation cubic and recursive)."""
    return [f"r{i}: r{i + 1}" for i in range(n - 1)] + [f"r{n - 1}: [user]"]


def userset_chained(n: int) -> list[str]:
    return [f"r{i}: [doc#r{i + 1}]" for i in range(n - 1)] + [f"r{n - 1}: [user]"]


def fanned(n: int) -> list[str]:
    """Each relation reaches the two before it, through usersets, computed relations and
    an exclusion: many paths to every entry point."""
    rels = ["r0: [user]", "r1: [user] or r0"]
    rels += [f"r{i}: ([doc#r{i - 1}] or r{i - 1} or r{i - 2}) but not r{i - 2}"
             for i in range(2, n)]
    return rels


def nested(n: int) -> str:
    expr = "a"
    for i in range(n):
        expr = f"(b or {expr})" if i % 2 else f"(b and {expr})"
    return f"c: [user] or {expr}"


@contextmanager
def stack_of(frames: int) -> Iterator[None]:
    """Run with only ``frames`` Python frames left: work whose recursion grew with the
    model's size would raise RecursionError here."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# -- validation is linear, and its stack does not grow with the model -------------------


@pytest.mark.parametrize("shape", [chained, userset_chained, fanned])
@pytest.mark.parametrize("n", [600, 1_200])
def test_large_models_validate_with_a_stack_independent_of_their_size(
        shape: Callable[[int], list[str]], n: int) -> None:
    text = _doc(shape(n))
    with stack_of(120):
        model = parse_model(text)
    assert len(model.types["doc"].relations) == n


def test_a_cycle_at_the_end_of_a_long_chain_is_found_and_named() -> None:
    rels = [f"r{i}: r{i + 1}" for i in range(1_199)] + ["r1199: r1150"]
    with stack_of(120), pytest.raises(InvalidArgumentError) as info:
        parse_model(_doc(rels))
    assert "cycle of computed relations" in str(info.value)
    assert "r1150 -> r1151" in str(info.value) and str(info.value).endswith("-> r1150")
    assert info.value.details["line"] == 6  # reported at the first relation that reaches it


def test_a_relation_without_entry_point_deep_in_a_cyclic_model_is_reported() -> None:
    # r0 … r1199 form one big cycle through usersets; nothing ever grants any of them.
    rels = [f"r{i}: [doc#r{(i + 1) % 1_200}] or r{(i + 1) % 1_200}" for i in range(1_200)]
    rels[-1] = "r1199: [doc#r0]"
    with stack_of(120), pytest.raises(InvalidArgumentError, match="no entry point"):
        parse_model(_doc(rels))


# -- nesting ------------------------------------------------------------------------------


def test_3000_nested_parentheses_are_a_limit_error_not_a_recursion_error() -> None:
    with pytest.raises(LimitExceededError) as info:
        parse_model(_doc(["a: [user]", "b: [user]", nested(3_000)]))
    assert info.value.code == "limit_exceeded" and 400 <= info.value.http_status < 500
    assert info.value.details["limit"] == "max_nesting"
    assert f"more than {MAX_NESTING}" in str(info.value)
    assert "line 8: " in str(info.value)
    with pytest.raises(LimitExceededError):
        parse_model(_doc(["a: [user]", "c: " + "(" * 3_000 + "a" + ")" * 3_000]))


def test_nesting_up_to_the_limit_parses_and_is_checked_without_crashing() -> None:
    model = parse_model(_doc(["a: [user]", "b: [user]", nested(MAX_NESTING)]))
    tuples = [RelationTuple.parse("doc:1", "b", "user:x")]
    checker = Checker(model, MemoryTupleReader(tuples))
    assert checker.check("doc", "1", "c", "user", "x")  # the outermost group is "b or …"
    assert not checker.check("doc", "1", "c", "user", "y")
    with pytest.raises(LimitExceededError):
        parse_model(_doc(["a: [user]", "b: [user]", nested(MAX_NESTING + 1)]))


# -- size bounds ----------------------------------------------------------------------------


def test_size_bounds_are_limit_errors_naming_the_bound() -> None:
    many_types = HEAD + "".join(f"type t{i}\n" for i in range(MAX_TYPES))
    cases = {
        "max_types": many_types,
        "max_relations_per_type": _doc([f"r{i}: [user]"
                                        for i in range(MAX_RELATIONS_PER_TYPE + 1)]),
        "max_rewrite_nodes": _doc(["a: [user] or " + " or ".join(
            f"x{i}" for i in range(MAX_REWRITE_NODES))]),
        "max_model_bytes": _doc(["a: [user]"]) + "#" * MAX_MODEL_BYTES,
    }
    for limit, text in cases.items():
        with pytest.raises(LimitExceededError) as info:
            parse_model(text)
        assert info.value.details["limit"] == limit, limit
        assert str(info.value).startswith("invalid authorization model: line ")
    # One under each bound is a valid model.
    parse_model(HEAD + "".join(f"type t{i}\n" for i in range(MAX_TYPES - 1)))
    parse_model(_doc([f"r{i}: [user]" for i in range(MAX_RELATIONS_PER_TYPE)]))


def test_a_long_condition_parses() -> None:
    body = "\n".join(["  x == 1 ||"] * 20_000 + ["  x == 2"])
    text = (HEAD + "type doc\n  relations\n    define a: [user with c]\n"
            f"condition c(x: int) {{\n{body}\n}}\n")
    assert parse_model(text).conditions["c"].expression.endswith("x == 2")


# -- checks on such models stay 4xx --------------------------------------------------------


def test_600_chained_relations_check_is_a_depth_denial() -> None:
    model = parse_model(_doc(chained(600)))
    checker = Checker(model, MemoryTupleReader([RelationTuple.parse("doc:1", "r599",
                                                                    "user:x")]))
    with pytest.raises(nexus.AuthzLimitExceededError):
        checker.check("doc", "1", "r0", "user", "x")
    assert checker.check("doc", "1", "r590", "user", "x")  # near the tail: within depth


def test_a_check_on_a_very_deep_path_is_a_denial_not_a_recursion_error() -> None:
    path = "/tenants/t" + "/d" * 1_500
    checker = Checker(default_model(), PathParentReader(MemoryTupleReader([])),
                      max_depth=25 + 2 * 1_502)
    with pytest.raises(nexus.AuthzLimitExceededError) as info:
        checker.check("file", path, "can_read", "user", "bob")
    assert info.value.details.get("limit") == "stack"


# -- over the API ---------------------------------------------------------------------------


def _tenant_model(relations: list[str]) -> str:
    return default_model_text() + "\ntype doc\n  relations\n" + "".join(
        f"    define {r}\n" for r in relations)


def test_model_writes_over_the_bounds_are_4xx_on_every_transport(admin: Any) -> None:
    admin.create_tenant("boundco")
    with pytest.raises(nexus.LimitExceededError) as info:
        admin.rebac_write_model(_tenant_model(["a: [user]", "b: [user]", nested(3_000)]),
                                tenant_id="boundco")
    assert info.value.code == "limit_exceeded"
    assert info.value.details["limit"] == "max_nesting"
    # The rejected model changed nothing.
    assert admin.rebac_read_model(tenant_id="boundco")["model_id"] == "default"


def test_a_600_chain_model_is_written_and_its_deep_check_denied_with_a_4xx(admin: Any) -> None:
    admin.create_tenant("chainco")
    admin.rebac_write_model(_tenant_model(chained(600)), tenant_id="chainco")
    admin.rebac_create(("user", "x"), "r599", ("doc", "d1"), tenant_id="chainco")
    with pytest.raises(nexus.AuthzLimitExceededError) as info:
        admin.rebac_check(("user", "x"), "r0", ("doc", "d1"), tenant_id="chainco")
    assert info.value.code == "authz_limit_exceeded"
    assert admin.rebac_check(("user", "x"), "r590", ("doc", "d1"), tenant_id="chainco")
