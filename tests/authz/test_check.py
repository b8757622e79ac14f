"""Checker behaviour: inheritance down paths, wildcards, exclusion, intersection, cycles,
limits (fail closed), expiry, and the list / expand operations."""

from __future__ import annotations

import time

import pytest

from nexus.authz import (
    AuthzDepthExceeded,
    AuthzLimitExceeded,
    Checker,
    CheckRequest,
    MemoryTupleReader,
    PathParentReader,
    RelationTuple,
    Subject,
    default_model,
    parse_model,
)
from nexus.errors import InvalidArgumentError

T = RelationTuple.parse
HEADER = "model\n  schema 1.1\ntype user\n"


def files(*tuples: RelationTuple, **kwargs: object) -> Checker:
    """A checker over the default model with parents derived from paths."""
    return Checker(default_model(), PathParentReader(MemoryTupleReader(tuples), **kwargs))


def simple(dsl: str, *tuples: RelationTuple, **kwargs: int) -> Checker:
    return Checker(parse_model(HEADER + dsl), MemoryTupleReader(tuples), **kwargs)


# -- the default model ------------------------------------------------------------------

def test_owner_of_a_directory_owns_everything_below_it() -> None:
    c = files(T("file:/tenants/acme", "owner", "user:alice"))
    for relation in ("owner", "editor", "can_write", "viewer", "can_read"):
        assert c.check("file", "/tenants/acme/shared/x/y.txt", relation, "user", "alice")
        assert c.check("file", "/tenants/acme", relation, "user", "alice")
        assert not c.check("file", "/tenants/beta/x", relation, "user", "alice")
        assert not c.check("file", "/tenants", relation, "user", "alice")
        assert not c.check("file", "/tenants/acme/shared/x/y.txt", relation, "user", "bob")


def test_tenant_members_can_be_granted_a_directory_of_another_tenant() -> None:
    c = files(T("file:/tenants/acme/shared", "can_read", "tenant:beta#member"),
              T("tenant:beta", "member", "user:bob"),
              T("tenant:beta", "admin", "user:carol"),
              T("tenant:beta", "member", "group:ops#member"),
              T("group:ops", "member", "user:dave"))
    for user in ("bob", "carol", "dave"):
        assert c.check("file", "/tenants/acme/shared/doc", "can_read", "user", user)
        assert not c.check("file", "/tenants/acme/shared/doc", "can_write", "user", user)
        assert not c.check("file", "/tenants/acme/other", "can_read", "user", user)
    assert not c.check("file", "/tenants/acme/shared/doc", "can_read", "user", "eve")
    assert c.check("file", "/tenants/acme/shared/doc", "can_read", "tenant", "beta", "member")


def test_levels_nest_editor_is_can_write_and_viewer_is_can_read() -> None:
    c = files(T("file:/t/a", "editor", "user:ed"), T("file:/t/a", "viewer", "user:vi"),
              T("file:/t/a", "can_write", "user:wr"))
    path = "/t/a/deep/file.txt"
    assert c.check("file", path, "editor", "user", "ed")
    assert c.check("file", path, "can_write", "user", "ed")
    assert c.check("file", path, "can_read", "user", "ed")
    assert not c.check("file", path, "owner", "user", "ed")
    assert c.check("file", path, "can_read", "user", "vi")
    assert c.check("file", path, "viewer", "user", "vi")
    assert not c.check("file", path, "can_write", "user", "vi")
    assert c.check("file", path, "can_write", "user", "wr")
    assert not c.check("file", path, "editor", "user", "wr")


def test_public_wildcard_grants_every_user_but_not_usersets() -> None:
    c = files(T("file:/pub", "can_read", "user:*"))
    assert c.check("file", "/pub/x", "can_read", "user", "anyone")
    assert c.check("file", "/pub/x", "can_read", "user", "*")
    assert not c.check("file", "/pub/x", "can_read", "group", "g", "member")
    assert not c.check("file", "/pub/x", "can_write", "user", "anyone")


def test_expired_grants_grant_nothing() -> None:
    now = [1000.0]
    reader = MemoryTupleReader([T("file:/t", "owner", "user:a", expires_at=1500.0),
                                T("file:/t", "viewer", "user:b", expires_at=900.0)],
                               clock=lambda: now[0])
    c = Checker(default_model(), PathParentReader(reader))
    assert c.check("file", "/t/x", "can_write", "user", "a")
    assert not c.check("file", "/t/x", "can_read", "user", "b")
    now[0] = 1500.0
    assert not c.check("file", "/t/x", "can_read", "user", "a")


# -- operators, wildcards, cycles -------------------------------------------------------

MODEL = """
type group
  relations
    define member: [user, user:*, group#member]
type doc
  relations
    define blocked: [user, user:*]
    define allowed: [user]
    define viewer: [user, user:*, group#member] but not blocked
    define both: [user, user:*] and allowed
"""


def test_exclusion_with_wildcards() -> None:
    c = simple(MODEL, T("doc:1", "viewer", "user:*"), T("doc:1", "blocked", "user:bob"),
               T("doc:2", "viewer", "user:bob"), T("doc:2", "blocked", "user:*"))
    assert c.check("doc", "1", "viewer", "user", "alice")
    assert not c.check("doc", "1", "viewer", "user", "bob")
    assert c.check("doc", "1", "viewer", "user", "*")
    assert not c.check("doc", "2", "viewer", "user", "bob")
    assert [str(s) for s in c.list_subjects("doc", "1", "viewer", "user")] == ["user:*"]


def test_intersection_needs_every_branch() -> None:
    c = simple(MODEL, T("doc:1", "both", "user:*"), T("doc:1", "allowed", "user:bob"))
    assert c.check("doc", "1", "both", "user", "bob")
    assert not c.check("doc", "1", "both", "user", "alice")
    assert not c.check("doc", "1", "both", "user", "*")
    assert [str(s) for s in c.list_subjects("doc", "1", "both", "user")] == ["user:bob"]


def test_nested_groups_and_cycles_terminate() -> None:
    c = simple(MODEL, T("group:a", "member", "group:b#member"),
               T("group:b", "member", "group:a#member"), T("group:b", "member", "user:x"),
               T("doc:1", "viewer", "group:a#member"))
    assert c.check("group", "a", "member", "user", "x")
    assert c.check("doc", "1", "viewer", "user", "x")
    assert not c.check("group", "a", "member", "user", "y")
    assert not c.check("doc", "1", "viewer", "user", "y")
    assert c.list_objects("user:x", "member", "group") == ["a", "b"]
    assert [str(s) for s in c.list_subjects("doc", "1", "viewer", "group", "member")] == [
        "group:a#member", "group:b#member"]


def _chain(n: int) -> list[RelationTuple]:
    return [T(f"group:g{i}", "member", f"group:g{i + 1}#member") for i in range(n)] + [
        T(f"group:g{n}", "member", "user:deep")]


def test_depth_limit_fails_closed() -> None:
    c = simple(MODEL, *_chain(30))
    with pytest.raises(AuthzDepthExceeded):
        c.check("group", "g0", "member", "user", "deep")
    with pytest.raises(AuthzDepthExceeded):
        c.check("group", "g0", "member", "user", "nobody")
    assert c.check("group", "g10", "member", "user", "deep")  # 20 levels: within the limit
    assert isinstance(AuthzDepthExceeded("x"), InvalidArgumentError)
    shallow = simple(MODEL, *_chain(30), max_depth=5)
    with pytest.raises(AuthzDepthExceeded):
        shallow.check("group", "g20", "member", "user", "deep")


def test_too_deep_branch_does_not_hide_a_grant_from_another_branch() -> None:
    c = simple(MODEL, *_chain(30), T("group:g0", "member", "user:deep"))
    assert c.check("group", "g0", "member", "user", "deep")


def test_read_budget_fails_closed() -> None:
    tuples = [T("doc:1", "allowed", f"user:u{i}") for i in range(50)]
    c = simple(MODEL, *tuples, max_reads=10)
    with pytest.raises(AuthzLimitExceeded):
        c.check("doc", "1", "allowed", "user", "u3")


def test_invalid_requests_are_rejected() -> None:
    c = simple(MODEL)
    with pytest.raises(InvalidArgumentError, match="no relation 'editor'"):
        c.check("doc", "1", "editor", "user", "a")
    with pytest.raises(InvalidArgumentError, match="unknown subject type"):
        c.check("doc", "1", "viewer", "robot", "a")
    with pytest.raises(InvalidArgumentError, match="wildcard"):
        c.check("doc", "1", "viewer", "group", "*", "member")
    with pytest.raises(InvalidArgumentError, match="unknown type"):
        c.list_objects("user:a", "viewer", "folder")
    with pytest.raises(InvalidArgumentError, match="unknown subject type"):
        c.list_subjects("doc", "1", "viewer", "robot")


def test_tuples_the_model_no_longer_allows_are_ignored() -> None:
    # Stored under an older model that allowed group#member on `allowed`.
    c = simple(MODEL, T("doc:1", "allowed", "group:a#member"), T("group:a", "member", "user:x"))
    assert not c.check("doc", "1", "allowed", "user", "x")


# -- batch, expand, listing -------------------------------------------------------------

def test_check_many_keeps_order() -> None:
    c = files(T("file:/t/a", "viewer", "user:v"))
    requests = [CheckRequest("file", "/t/a/x", "can_read", "user", "v"),
                CheckRequest("file", "/t/b", "can_read", "user", "v"),
                CheckRequest("file", "/t/a", "can_write", "user", "v")]
    assert c.check_many(requests) == [True, False, False]


def test_expand_one_level() -> None:
    c = simple(MODEL, T("doc:1", "viewer", "user:a"), T("doc:1", "viewer", "group:g#member"))
    tree = c.expand("doc", "1", "viewer")
    assert tree == {"name": "doc:1#viewer", "difference": {
        "base": {"leaf": {"users": ["group:g#member", "user:a"]}},
        "subtract": {"leaf": {"computed": "doc:1#blocked"}}}}
    tree = files(T("file:/a", "owner", "user:o")).expand("file", "/a/b", "owner")
    assert tree["union"][1] == {"leaf": {"tupleToUserset": {"tupleset": "file:/a/b#parent",
                                                            "computed": ["file:/a#owner"]}}}


def test_list_objects_over_derived_parents_needs_candidates_or_children() -> None:
    grants = [T("file:/t/a", "viewer", "user:v")]
    c = files(*grants)
    with pytest.raises(InvalidArgumentError, match="needs explicit candidates"):
        c.list_objects("user:v", "can_read", "file")
    candidates = ["/t/a", "/t/a/x", "/t/b", "/t"]
    assert c.list_objects(Subject("user", "v"), "can_read", "file",
                          candidates=candidates) == ["/t/a", "/t/a/x"]
    tree = {"/t": ["/t/a", "/t/b"], "/t/a": ["/t/a/x"], "/t/a/x": [], "/t/b": []}
    c = files(*grants, list_children=lambda path: tree.get(path, []))
    assert c.list_objects("user:v", "can_read", "file") == ["/t/a", "/t/a/x"]


def test_list_objects_and_subjects_through_groups() -> None:
    c = simple(MODEL, T("group:eng", "member", "user:a"), T("doc:1", "viewer", "group:eng#member"),
               T("doc:2", "viewer", "user:*"), T("doc:2", "blocked", "user:a"),
               T("doc:3", "viewer", "user:a"))
    assert c.list_objects("user:a", "viewer", "doc") == ["1", "3"]
    assert c.list_objects("user:b", "viewer", "doc") == ["2"]
    assert [str(s) for s in c.list_subjects("doc", "1", "viewer", "user")] == ["user:a"]
    assert c.list_subjects("doc", "2", "viewer", "user") == [Subject("user", "*")]


def test_simple_check_is_fast() -> None:
    c = simple(MODEL, T("doc:1", "allowed", "user:a"))
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        c.check("doc", "1", "allowed", "user", "a")
    per_check = (time.perf_counter() - start) / n
    assert per_check < 200e-6, f"{per_check * 1e6:.1f} µs per check"


LIMITS = """
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define parent: [group]
    define denied: [user]
    define granted: [user]
    define via_parent: member from parent
    define both: via_parent and denied
    define both_granted: via_parent and granted
    define either: via_parent or denied
    define either_granted: via_parent or granted
"""


def test_limit_errors_are_deferred_only_when_another_branch_decides() -> None:
    tuples = [*_chain(30), T("doc:1", "parent", "group:g0"), T("doc:1", "granted", "user:deep")]
    c = simple(LIMITS, *tuples)
    assert not c.check("doc", "1", "both", "user", "deep")  # `and`: denied decides
    assert c.check("doc", "1", "either_granted", "user", "deep")  # `or`: granted decides
    for relation in ("both_granted", "either", "via_parent"):
        with pytest.raises(AuthzDepthExceeded):
            c.check("doc", "1", relation, "user", "deep")
    # `X from Y` with one parent too deep and another granting: granted.
    c = simple(LIMITS, *tuples, T("doc:1", "parent", "group:g29"))
    assert c.check("doc", "1", "via_parent", "user", "deep")


def test_expand_intersection_and_empty_subject() -> None:
    c = simple(MODEL)
    assert c.expand("doc", "1", "both")["intersection"][1] == {
        "leaf": {"computed": "doc:1#allowed"}}
    with pytest.raises(InvalidArgumentError, match="must not be empty"):
        c.check("doc", "1", "viewer", "user", "")


def test_listing_read_budget_fails_closed() -> None:
    tuples = [T(f"doc:{i}", "allowed", "user:a") for i in range(20)]
    tuples += [T("doc:1", "viewer", f"user:u{i}") for i in range(20)]
    c = simple(MODEL, *tuples, max_reads=10)
    with pytest.raises(AuthzLimitExceeded):
        c.list_objects("user:a", "allowed", "doc")
    with pytest.raises(AuthzLimitExceeded):
        c.list_subjects("doc", "1", "viewer", "user")
