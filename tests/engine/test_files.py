"""The file API end to end on the embedded engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

import pytest

import nexus
from nexus.client import NexusClient
from nexus.types import Principal

#: The client suite: every test here runs through the sync and the async client.
pytestmark = pytest.mark.both_clients


def test_mkdir_creates_missing_parents_and_is_idempotent(admin: NexusClient) -> None:
    info = admin.mkdir("/tenants/acme/users/alice")
    assert info["type"] == "directory" and info["path"] == "/tenants/acme/users/alice"
    assert admin.stat("/tenants/acme/users")["type"] == "directory"
    assert admin.mkdir("/tenants/acme/users/alice")["path"] == "/tenants/acme/users/alice"
    with pytest.raises(nexus.NexusFileExistsError):
        admin.mkdir("/tenants/acme/users/alice", exist_ok=False)


def test_mkdir_without_parents_needs_the_parent(admin: NexusClient) -> None:
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.mkdir("/tenants/acme/a/b", parents=False)
    admin.mkdir("/tenants/acme/a", parents=True)
    assert admin.mkdir("/tenants/acme/a/b", parents=False)["name"] == "b"


def test_mkdir_over_a_file_is_refused(admin: NexusClient) -> None:
    admin.write("/tenants/acme/f", b"x")
    with pytest.raises(nexus.NexusFileExistsError):
        admin.mkdir("/tenants/acme/f")
    with pytest.raises(nexus.NexusNotADirectoryError):
        admin.write("/tenants/acme/f/child.txt", b"y")


def test_write_returns_metadata_and_read_returns_bytes(admin: NexusClient) -> None:
    data = b"# Acme Project Plan\n"
    info = admin.write("/tenants/acme/shared/project-plan.md", data)
    assert info["path"] == "/tenants/acme/shared/project-plan.md"
    assert info["size"] == len(data)
    assert info["etag"] == hashlib.sha256(data).hexdigest()
    assert info["version"] == 1
    assert info["modified_at"].endswith("+00:00")
    assert admin.read("/tenants/acme/shared/project-plan.md") == data
    assert admin.stat("/tenants/acme/shared")["type"] == "directory"


def test_write_accepts_streams_and_iterators(admin: NexusClient) -> None:
    admin.write("/tenants/acme/stream.bin", io.BytesIO(b"abc" * 1000))
    admin.write("/tenants/acme/iter.bin", iter([b"ab", b"", b"cd"]))
    assert admin.read("/tenants/acme/stream.bin") == b"abc" * 1000
    assert admin.read("/tenants/acme/iter.bin") == b"abcd"


def test_write_rejects_text(admin: NexusClient) -> None:
    with pytest.raises(nexus.InvalidArgumentError):
        admin.write("/tenants/acme/t.txt", "not bytes")  # type: ignore[arg-type]
    assert not admin.exists("/tenants/acme/t.txt")


def test_overwrite_bumps_version_and_etag(admin: NexusClient) -> None:
    first = admin.write("/tenants/acme/f.txt", b"one")
    second = admin.write("/tenants/acme/f.txt", b"two")
    assert second["version"] == first["version"] + 1
    assert second["etag"] != first["etag"]
    assert admin.read("/tenants/acme/f.txt") == b"two"


def test_if_match_conflict_keeps_the_current_content(admin: NexusClient) -> None:
    first = admin.write("/tenants/acme/f.txt", b"one")
    admin.write("/tenants/acme/f.txt", b"two")
    with pytest.raises(nexus.ConflictError):
        admin.write("/tenants/acme/f.txt", b"three", if_match=first["etag"])
    assert admin.read("/tenants/acme/f.txt") == b"two"
    current = admin.stat("/tenants/acme/f.txt")["etag"]
    assert admin.write("/tenants/acme/f.txt", b"four", if_match=current)["size"] == 4
    with pytest.raises(nexus.ConflictError):
        admin.write("/tenants/acme/missing.txt", b"x", if_match=current)


def test_if_none_match_is_create_only(admin: NexusClient) -> None:
    admin.write("/tenants/acme/once.txt", b"1", if_none_match=True)
    with pytest.raises(nexus.NexusFileExistsError):
        admin.write("/tenants/acme/once.txt", b"2", if_none_match=True)
    assert admin.read("/tenants/acme/once.txt") == b"1"


def test_ranged_reads(admin: NexusClient) -> None:
    admin.write("/tenants/acme/r.bin", bytes(range(256)))
    assert admin.read("/tenants/acme/r.bin", offset=10, length=5) == bytes(range(10, 15))
    assert admin.read("/tenants/acme/r.bin", offset=250) == bytes(range(250, 256))
    assert admin.read("/tenants/acme/r.bin", offset=300) == b""
    with pytest.raises(nexus.InvalidArgumentError):
        admin.read("/tenants/acme/r.bin", offset=-1)


def test_read_errors(admin: NexusClient) -> None:
    admin.mkdir("/tenants/acme/dir")
    with pytest.raises(nexus.NexusFileNotFoundError) as excinfo:
        admin.read("/tenants/acme/nope.txt")
    assert isinstance(excinfo.value, FileNotFoundError)
    with pytest.raises(nexus.NexusIsADirectoryError):
        admin.read("/tenants/acme/dir")
    with pytest.raises(nexus.NexusIsADirectoryError):
        admin.write("/tenants/acme/dir", b"x")


def test_append_creates_then_extends(admin: NexusClient) -> None:
    admin.append("/tenants/acme/.audit/log.jsonl", b"line1\n")
    info = admin.append("/tenants/acme/.audit/log.jsonl", b"line2\n")
    assert admin.read("/tenants/acme/.audit/log.jsonl") == b"line1\nline2\n"
    assert info["size"] == 12 and info["version"] == 2


def test_stat_and_exists(admin: NexusClient) -> None:
    admin.write("/tenants/acme/a.txt", b"abc")
    assert admin.exists("/tenants/acme/a.txt")
    assert not admin.exists("/tenants/acme/b.txt")
    assert admin.stat("/")["type"] == "directory"
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.stat("/tenants/acme/b.txt")


def test_list_returns_dicts_with_path(admin: NexusClient) -> None:
    admin.write("/tenants/acme/shared/a.md", b"a")
    admin.write("/tenants/acme/shared/sub/b.md", b"bb")
    entries = admin.list("/tenants/acme/shared")
    assert [(e["path"], e["type"], e["size"]) for e in entries] == [
        ("/tenants/acme/shared/a.md", "file", 1),
        ("/tenants/acme/shared/sub", "directory", 0),
    ]
    assert {"path", "name", "type", "size", "etag", "modified_at"} <= set(entries[0])
    recursive = [e["path"] for e in admin.list("/tenants/acme", recursive=True)]
    assert recursive == ["/tenants/acme/shared", "/tenants/acme/shared/a.md",
                         "/tenants/acme/shared/sub", "/tenants/acme/shared/sub/b.md"]


def test_list_of_tenants_shows_tenant_roots(admin: NexusClient) -> None:
    for tenant in ("beta", "acme", "a-b", "startup"):
        admin.mkdir(f"/tenants/{tenant}")
    admin.write("/tenants/acme/x.txt", b"x")
    names = [e["path"].split("/")[-1] for e in admin.list("/tenants", recursive=False)]
    assert names == ["a-b", "acme", "beta", "startup"]
    everything = [e["path"] for e in admin.list("/", recursive=True)]
    assert sorted(everything) == sorted(["/tenants", "/tenants/a-b", "/tenants/acme",
                                         "/tenants/acme/x.txt", "/tenants/beta",
                                         "/tenants/startup"])


@pytest.mark.parametrize("count, limit", [
    (250, 100),
    pytest.param(2500, 1000, marks=pytest.mark.slow, id="2500-1000"),
])
def test_list_paging_across_many_entries(admin: NexusClient, service, count: int,
                                         limit: int) -> None:
    # Entries are created through the service (writes are tested above); the paging under
    # test goes through the client and its transport.
    local_admin = Principal.local_admin()
    service.tenants.create_tenant(local_admin, "acme", plan="pro")  # free allows 1,000 files
    service.files.mkdir(local_admin, "/tenants/acme/many")
    # Eight writers at once: the rows are what matters here, and on PostgreSQL 2,500
    # serial commits were a minute of the suite.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: service.files.write(local_admin, f"/tenants/acme/many/f{i:05d}",
                                                    b""), range(count)))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = admin.list_page("/tenants/acme/many", limit=limit, cursor=cursor)
        seen += [e["path"] for e in page["entries"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == -(-count // limit)
    assert seen == [f"/tenants/acme/many/f{i:05d}" for i in range(count)]
    assert len(admin.list("/tenants/acme/many")) == count
    # + the standard folders (users, shared, uploads, exports) and "many" itself
    assert len(list(admin.iter_list("/tenants/acme", recursive=True,
                                    page_size=limit // 3))) == count + 5


def test_recursive_paging_across_tenants(admin: NexusClient) -> None:
    expected = []
    for tenant in ("t1", "t2", "t3"):
        for i in range(7):
            admin.write(f"/tenants/{tenant}/d/f{i}", b"")
            expected.append(f"/tenants/{tenant}/d/f{i}")
    got = [e["path"] for e in admin.iter_list("/tenants", recursive=True, page_size=4)]
    assert sorted(p for p in got if p.count("/") == 4) == sorted(expected)
    assert len(got) == len(set(got)) == 3 * (7 + 2)


def test_bad_cursor_and_limit(admin: NexusClient) -> None:
    admin.mkdir("/tenants/acme")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.list_page("/tenants/acme", cursor="!!!not-a-cursor")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.list_page("/tenants/acme", limit=0)


def test_list_of_a_file_is_the_file(admin: NexusClient) -> None:
    admin.write("/tenants/acme/f", b"1")
    assert [e["path"] for e in admin.list("/tenants/acme/f")] == ["/tenants/acme/f"]
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.list("/tenants/acme/nothing")


def test_delete(admin: NexusClient) -> None:
    admin.write("/tenants/acme/f", b"1")
    admin.delete("/tenants/acme/f")
    assert not admin.exists("/tenants/acme/f")
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.delete("/tenants/acme/f")
    with pytest.raises(nexus.NexusIsADirectoryError):
        admin.delete("/tenants/acme")


def test_rmdir_non_empty_needs_recursive(admin: NexusClient) -> None:
    admin.write("/tenants/acme/d/sub/f", b"1")
    with pytest.raises(nexus.DirectoryNotEmptyError):
        admin.rmdir("/tenants/acme/d")
    assert admin.read("/tenants/acme/d/sub/f") == b"1"
    admin.rmdir("/tenants/acme/d", recursive=True)
    assert not admin.exists("/tenants/acme/d")
    assert not admin.exists("/tenants/acme/d/sub/f")
    admin.mkdir("/tenants/acme/empty")
    admin.rmdir("/tenants/acme/empty")
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.rmdir("/tenants/acme/empty")
    admin.write("/tenants/acme/file", b"")
    with pytest.raises(nexus.NexusNotADirectoryError):
        admin.rmdir("/tenants/acme/file")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.rmdir("/", recursive=True)


def test_rmdir_of_a_tenant_removes_it_from_tenants(admin: NexusClient) -> None:
    admin.write("/tenants/acme/shared/a", b"1")
    admin.write("/tenants/acme-2/shared/a", b"2")
    admin.rmdir("/tenants/acme", recursive=True)
    assert [e["name"] for e in admin.list("/tenants")] == ["acme-2"]
    assert admin.read("/tenants/acme-2/shared/a") == b"2"
    admin.mkdir("/tenants/acme")
    assert admin.list("/tenants/acme", recursive=True) == []


def test_rename_file_and_directory(admin: NexusClient) -> None:
    admin.write("/tenants/acme/d/a.txt", b"a")
    admin.write("/tenants/acme/d/sub/b.txt", b"b")
    moved = admin.rename("/tenants/acme/d/a.txt", "/tenants/acme/e/a2.txt")
    assert moved["path"] == "/tenants/acme/e/a2.txt"
    assert admin.read("/tenants/acme/e/a2.txt") == b"a"
    assert not admin.exists("/tenants/acme/d/a.txt")
    admin.rename("/tenants/acme/d", "/tenants/acme/moved")
    assert admin.read("/tenants/acme/moved/sub/b.txt") == b"b"
    assert [e["path"] for e in admin.list("/tenants/acme/moved", recursive=True)] == [
        "/tenants/acme/moved/sub", "/tenants/acme/moved/sub/b.txt"]
    assert not admin.exists("/tenants/acme/d")
    assert [e["path"] for e in admin.list("/tenants/acme/moved/sub")] == [
        "/tenants/acme/moved/sub/b.txt"]


def test_rename_over_existing(admin: NexusClient) -> None:
    admin.write("/tenants/acme/a", b"a")
    admin.write("/tenants/acme/b", b"b")
    with pytest.raises(nexus.NexusFileExistsError):
        admin.rename("/tenants/acme/a", "/tenants/acme/b")
    assert admin.read("/tenants/acme/b") == b"b"
    admin.rename("/tenants/acme/a", "/tenants/acme/b", overwrite=True)
    assert admin.read("/tenants/acme/b") == b"a"
    assert not admin.exists("/tenants/acme/a")
    admin.mkdir("/tenants/acme/dir")
    with pytest.raises(nexus.NexusFileExistsError):
        admin.rename("/tenants/acme/b", "/tenants/acme/dir", overwrite=True)


def test_rename_into_itself_and_of_roots_is_refused(admin: NexusClient) -> None:
    admin.mkdir("/tenants/acme/d")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.rename("/tenants/acme/d", "/tenants/acme/d/inner")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.rename("/tenants/acme", "/tenants/other")
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.rename("/tenants/acme/missing", "/tenants/acme/x")


def test_rename_file_across_tenants_moves_content(admin: NexusClient) -> None:
    admin.write("/tenants/acme/f", b"content")
    admin.rename("/tenants/acme/f", "/tenants/beta/f")
    assert admin.read("/tenants/beta/f") == b"content"
    assert not admin.exists("/tenants/acme/f")
    admin.mkdir("/tenants/acme/dir")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.rename("/tenants/acme/dir", "/tenants/beta/dir")


def test_copy(admin: NexusClient) -> None:
    admin.write("/tenants/acme/a", b"abc")
    copied = admin.copy("/tenants/acme/a", "/tenants/acme/b")
    assert copied["size"] == 3 and copied["etag"] == admin.stat("/tenants/acme/a")["etag"]
    admin.write("/tenants/acme/a", b"changed")
    assert admin.read("/tenants/acme/b") == b"abc"
    with pytest.raises(nexus.NexusFileExistsError):
        admin.copy("/tenants/acme/a", "/tenants/acme/b")
    admin.copy("/tenants/acme/a", "/tenants/acme/b", overwrite=True)
    assert admin.read("/tenants/acme/b") == b"changed"
    admin.copy("/tenants/acme/a", "/tenants/beta/a")
    assert admin.read("/tenants/beta/a") == b"changed"
    with pytest.raises(nexus.NexusIsADirectoryError):
        admin.copy("/tenants/acme", "/tenants/acme/c")


def test_unicode_paths_are_nfc(admin: NexusClient) -> None:
    nfd = "/tenants/acme/cafe\u0301.txt"
    nfc = "/tenants/acme/caf\u00e9.txt"
    admin.write(nfd, b"1")
    assert admin.read(nfc) == b"1"
    assert [e["path"] for e in admin.list("/tenants/acme")] == [nfc]


def test_tenant_principal_is_confined_to_its_tenant(admin: NexusClient, tenant_user) -> None:
    admin.write("/tenants/acme/shared/plan.md", b"acme secret")
    admin.write("/tenants/beta/shared/roadmap.md", b"beta secret")
    bob = tenant_user("beta", "bob")
    admin.rebac_create(("user", "bob"), "owner", ("file", "/tenants/beta"), tenant_id="beta")
    assert bob.read("/tenants/beta/shared/roadmap.md") == b"beta secret"
    for call in (lambda: bob.read("/tenants/acme/shared/plan.md"),
                 lambda: bob.stat("/tenants/acme/shared/plan.md"),
                 lambda: bob.exists("/tenants/acme/shared/nothing-here"),
                 lambda: bob.list("/tenants/acme"),
                 lambda: bob.list("/tenants"),
                 lambda: bob.write("/tenants/acme/x", b"x"),
                 lambda: bob.copy("/tenants/acme/shared/plan.md", "/tenants/beta/stolen"),
                 lambda: bob.rename("/tenants/beta/shared/roadmap.md", "/tenants/acme/r"),
                 lambda: bob.write("/exports/x", b"x")):
        with pytest.raises(nexus.NexusPermissionError):
            call()
    assert not admin.exists("/tenants/beta/stolen")
    assert admin.read("/tenants/beta/shared/roadmap.md") == b"beta secret"


def test_unknown_method_and_bad_params(admin: NexusClient) -> None:
    with pytest.raises(nexus.InvalidArgumentError):
        admin._call_rpc("no_such_method", {})
    with pytest.raises(nexus.InvalidArgumentError):
        admin._call_rpc("read", {"path": "/tenants/acme/x", "bogus": 1})
    with pytest.raises(nexus.InvalidArgumentError):
        admin._call_rpc("read", {})
