"""Check budgets (attack-style): evaluation steps are bounded per check, the limit fails
closed with the specific error, and memoisation stays correct across cycles. Assertions are
on errors and results, never on wall-clock time."""

from __future__ import annotations

import pytest

import nexus
from nexus.authz import AuthzLimitExceeded, Checker, MemoryTupleReader, RelationTuple, parse_model
from nexus.errors import LimitExceededError, error_class_for_code

T = RelationTuple.parse
MODEL = """model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define viewer: [user, group#member]
"""


def _clique(n: int) -> list[RelationTuple]:
    # Every group contains every other: a cyclic fan-out whose naive evaluation is n!.
    return [T(f"group:g{i}", "member", f"group:g{j}#member")
            for i in range(n) for j in range(n) if i != j]


def test_error_is_a_specific_limit_error_with_its_own_code() -> None:
    assert issubclass(AuthzLimitExceeded, nexus.AuthzLimitExceededError)
    assert issubclass(nexus.AuthzLimitExceededError, LimitExceededError)
    assert nexus.AuthzLimitExceededError.code == "authz_limit_exceeded"
    assert 400 <= nexus.AuthzLimitExceededError.http_status < 500
    assert error_class_for_code("authz_limit_exceeded") is nexus.AuthzLimitExceededError


def test_cyclic_fan_out_denial_is_cut_off_by_the_step_budget() -> None:
    c = Checker(parse_model(MODEL), MemoryTupleReader(_clique(12)), max_steps=5_000)
    with pytest.raises(nexus.AuthzLimitExceededError) as info:
        c.check("group", "g0", "member", "user", "nobody")
    assert info.value.details.get("limit") == "max_steps"


def test_grant_inside_a_cycle_is_still_found() -> None:
    tuples = [*_clique(6), T("group:g5", "member", "user:x")]
    c = Checker(parse_model(MODEL), MemoryTupleReader(tuples))
    for i in range(6):
        assert c.check("group", f"g{i}", "member", "user", "x")
    assert not c.check("group", "g0", "member", "user", "y")


def test_budget_applies_per_request_in_a_batch() -> None:
    from nexus.authz import CheckRequest
    c = Checker(parse_model(MODEL), MemoryTupleReader([T("doc:d", "viewer", "user:x")]),
                max_steps=10)
    reqs = [CheckRequest("doc", "d", "viewer", "user", "x")] * 50
    assert c.check_many(reqs) == [True] * 50


def test_in_progress_false_is_not_memoised_when_it_changes_the_answer() -> None:
    # a -> b -> a, and b -> c which grants. Evaluating a first visits b while a is in
    # progress; b must still be found True, and a later check of b must agree.
    tuples = [T("group:a", "member", "group:b#member"), T("group:b", "member", "group:a#member"),
              T("group:b", "member", "group:c#member"), T("group:c", "member", "user:x")]
    c = Checker(parse_model(MODEL), MemoryTupleReader(tuples))
    for first in ("a", "b", "c"):
        assert c.check("group", first, "member", "user", "x")
    # Deny case: b's False found under a (a still in progress) must not poison doc checks.
    tuples = [T("group:a", "member", "group:b#member"), T("group:b", "member", "group:a#member"),
              T("doc:1", "viewer", "group:a#member"), T("doc:1", "viewer", "group:b#member"),
              T("group:a", "member", "user:x")]
    c = Checker(parse_model(MODEL), MemoryTupleReader(tuples))
    assert c.check("doc", "1", "viewer", "user", "x")
    assert c.check("group", "b", "member", "user", "x")
