"""write_many: many small files in one call, per-file results, exact quota, one commit."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from tests.lifecycle.audit_events import all_events

import nexus
from nexus.client import NexusClient
from nexus.service import NexusService
from nexus.service.files import MAX_BATCH_FILES

#: The client suite: every test here runs through the sync and the async client.
pytestmark = pytest.mark.both_clients


@pytest.fixture
def acme(admin: NexusClient, tenant_user) -> NexusClient:
    admin.create_tenant("acme", plan="free", max_files=20)
    admin.create_tenant("beta", plan="free")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    return tenant_user("acme", "alice")


def test_many_files_in_one_call_read_back(acme: NexusClient) -> None:
    files = {f"/tenants/acme/batch/d{i % 3}/f{i}.txt": f"content {i}".encode()
             for i in range(12)}
    result = acme.write_many(files)
    assert result["written"] == 12 and result["failed"] == 0
    assert [r["path"] for r in result["results"]] == list(files)
    for path, data in files.items():
        assert acme.read(path) == data
    info = result["results"][0]["info"]
    assert info["size"] == len(files[next(iter(files))]) and info["type"] == "file"


def test_what_the_data_refuses_leaves_the_others_written(admin: NexusClient,
                                                          acme: NexusClient) -> None:
    admin.write("/tenants/acme/blocker", b"a file where a directory is wanted")
    admin.mkdir("/tenants/acme/a-directory")
    result = acme.write_many({
        "/tenants/acme/ok.txt": b"fine",
        "/tenants/acme/blocker/under.txt": b"parent is a file",
        "/tenants/acme/a-directory": b"a directory is there",
        "/tenants/acme/ok2.txt": b"also fine",
    })
    by_path = {r["path"]: r for r in result["results"]}
    assert by_path["/tenants/acme/ok.txt"]["ok"] and by_path["/tenants/acme/ok2.txt"]["ok"]
    assert not by_path["/tenants/acme/blocker/under.txt"]["ok"]
    assert by_path["/tenants/acme/a-directory"]["error"]["code"] == "is_a_directory"
    assert result["written"] == 2 and result["failed"] == 2
    assert acme.read("/tenants/acme/ok2.txt") == b"also fine"


@pytest.mark.parametrize("intruder, error", [
    ("/tenants/beta/stolen.txt", nexus.NexusPermissionError),  # another tenant
    ("/tenants/acme/../beta/x", nexus.InvalidPathError),  # dot-dot out of acme
    ("/tenants/acme/.tenant.json", nexus.InvalidArgumentError),  # the tenant's record
    ("/tenants/acme/.tenant.json/x", nexus.NexusError),  # under the record
    ("/tenants/acme", nexus.NexusIsADirectoryError),  # the tenant root itself
    ("relative/path", nexus.InvalidPathError),
])
def test_a_path_the_caller_may_not_write_refuses_the_whole_call(
        admin: NexusClient, acme: NexusClient, intruder: str, error: type) -> None:
    def stored() -> tuple[int, int]:
        usage = admin.get_usage("acme")["usage"]
        return usage["files"], usage["storage_bytes"]

    before = stored()
    with pytest.raises(error):
        acme.write_many({"/tenants/acme/first.txt": b"1", intruder: b"x",
                         "/tenants/acme/last.txt": b"2"})
    assert not admin.exists("/tenants/acme/first.txt")
    assert not admin.exists("/tenants/acme/last.txt")
    assert not admin.exists("/tenants/beta/stolen.txt")
    assert not admin.exists("/tenants/beta/x")
    assert stored() == before


def test_quota_is_exact_across_the_batch(admin: NexusClient, acme: NexusClient) -> None:
    room = 20 - admin.get_usage("acme")["usage"]["files"]
    files = {f"/tenants/acme/q/f{i}": b"x" * 10 for i in range(room + 5)}
    result = acme.write_many(files)
    assert result["written"] == room  # directories do not count as files
    refused = [r for r in result["results"] if not r["ok"]]
    assert {r["error"]["code"] for r in refused} == {"quota_exceeded"}
    usage = admin.get_usage("acme")["usage"]
    assert usage["files"] == 20
    listed = admin.list("/tenants/acme", recursive=True)
    stored = sum(e["size"] for e in listed if e["type"] == "file")
    assert usage["storage_bytes"] == stored


def test_each_written_file_has_its_audit_event(admin: NexusClient, acme: NexusClient) -> None:
    acme.write_many({"/tenants/acme/a1": b"1", "/tenants/acme/a2": b"2"})
    writes = [e["target"] for e in all_events(admin, "acme") if e["action"] == "write"]
    assert "/tenants/acme/a1" in writes and "/tenants/acme/a2" in writes
    assert admin.audit_verify("acme")["ok"]


@pytest.mark.parametrize("files, error", [
    ({}, nexus.InvalidArgumentError),
    ({"/tenants/acme/x": "not bytes"}, nexus.InvalidArgumentError),
    ({f"/tenants/acme/f{i}": b"" for i in range(MAX_BATCH_FILES + 1)},
     nexus.LimitExceededError),
])
def test_bad_batches_are_refused_whole(acme: NexusClient, files: dict, error: type) -> None:
    with pytest.raises(error):
        acme.write_many(files)
    assert not acme.exists("/tenants/acme/f0")


def test_the_same_path_twice_is_refused(acme: NexusClient) -> None:
    with pytest.raises(nexus.InvalidArgumentError, match="more than once"):
        # One name in two Unicode spellings (NFC and NFD): the same file once normalised.
        acme.write_many({"/tenants/acme/caf\u00e9": b"first",
                         "/tenants/acme/cafe\u0301": b"second"})
    assert not acme.exists("/tenants/acme/caf\u00e9")


def test_the_batch_is_one_transaction(service: NexusService, acme: NexusClient,
                                      transport: str) -> None:
    writing: set[int] = set()
    commits: list[int] = []

    def on_execute(conn, cursor, statement: str, *_: object) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writing.add(id(conn))

    def on_commit(conn) -> None:  # noqa: ANN001
        if id(conn) in writing:
            commits.append(id(conn))
            writing.discard(id(conn))

    acme.stat("/tenants/acme")  # the key's first-use bookkeeping, before counting
    service.audit.flush()
    event.listen(service.db.engine, "before_cursor_execute", on_execute)
    event.listen(service.db.engine, "commit", on_commit)
    try:
        acme.write_many({f"/tenants/acme/t/f{i}": b"x" for i in range(10)})
    finally:
        event.remove(service.db.engine, "before_cursor_execute", on_execute)
        event.remove(service.db.engine, "commit", on_commit)
    assert len(commits) == 1  # ten files, their directory, quota, audit: one commit
