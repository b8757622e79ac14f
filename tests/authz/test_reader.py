"""Tuple readers: indexing, expiry, layering and parents derived from paths."""

from __future__ import annotations

import pytest

from nexus.authz.reader import (
    LayeredTupleReader,
    MemoryTupleReader,
    PathParentReader,
    RelationTuple,
    Subject,
    parent_path,
)
from nexus.errors import InvalidArgumentError

T = RelationTuple.parse


@pytest.mark.parametrize(("path", "parent"), [
    ("/tenants/acme/a.txt", "/tenants/acme"), ("/tenants/acme", "/tenants"),
    ("/tenants/acme/", "/tenants"), ("/tenants", "/"), ("/", None), ("relative", None),
])
def test_parent_path(path: str, parent: str | None) -> None:
    assert parent_path(path) == parent


def test_memory_reader_indexes_both_directions_and_hides_expired() -> None:
    now = [100.0]
    r = MemoryTupleReader(clock=lambda: now[0])
    live = T("doc:1", "viewer", "group:g#member")
    r.add(live)
    r.add(live)
    r.add(T("doc:1", "viewer", "user:a", expires_at=150.0))
    assert len(r) == 2
    assert len(list(r.read("doc", "1", "viewer"))) == 2
    assert list(r.read_reverse("group", "g", "member", "doc", "viewer")) == [live]
    assert list(r.read("doc", "2", "viewer")) == []
    now[0] = 150.0
    assert list(r.read("doc", "1", "viewer")) == [live]
    assert list(r.read_reverse("user", "a", None, "doc", "viewer")) == []


def test_layered_reader_adds_contextual_tuples_once() -> None:
    shared = T("doc:1", "viewer", "user:a")
    base = MemoryTupleReader([shared])
    layered = LayeredTupleReader(base, [shared, T("doc:1", "viewer", "user:b")])
    assert sorted(t.subject_id for t in layered.read("doc", "1", "viewer")) == ["a", "b"]
    assert list(layered.read_reverse("user", "a", None, "doc", "viewer")) == [shared]
    assert list(LayeredTupleReader(base, []).read("doc", "1", "viewer")) == [shared]


def test_path_parent_reader_derives_parents_and_delegates_the_rest() -> None:
    inner = MemoryTupleReader([T("file:/a", "owner", "user:o"), T("file:/x", "parent", "file:/y")])
    r = PathParentReader(inner)
    assert list(r.read("file", "/a/b", "parent")) == [T("file:/a/b", "parent", "file:/a")]
    assert list(r.read("file", "/", "parent")) == []
    assert list(r.read("file", "/x", "parent")) == [T("file:/x", "parent", "file:/")]
    assert list(r.read("file", "/a", "owner")) == [T("file:/a", "owner", "user:o")]
    assert list(r.read_reverse("user", "o", None, "file", "owner")) == [
        T("file:/a", "owner", "user:o")]
    assert list(r.read_reverse("user", "o", None, "file", "parent")) == []
    with pytest.raises(InvalidArgumentError, match="explicit candidates"):
        r.read_reverse("file", "/a", None, "file", "parent")
    r = PathParentReader(inner, list_children=lambda p: ["/a/b", "/elsewhere/c"])
    assert list(r.read_reverse("file", "/a", None, "file", "parent")) == [
        T("file:/a/b", "parent", "file:/a")]


@pytest.mark.parametrize("text", ["user", "user:", ":a", "a:b:c", "group:g#", ""])
def test_subject_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidArgumentError):
        Subject.parse(text)


def test_subject_and_tuple_round_trip() -> None:
    assert str(Subject.parse("group:g#member")) == "group:g#member"
    assert Subject.parse("user:*") == Subject("user", "*")
    t = T("doc:1", "viewer", "group:g#member", expires_at=5.0)
    assert t.subject == Subject("group", "g", "member") and t.expires_at == 5.0
    with pytest.raises(InvalidArgumentError):
        T("doc", "viewer", "user:a")
