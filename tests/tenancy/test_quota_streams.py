"""Quota-refused uploads leave no bytes (issue #14): a stream is metered against the
tenant's room as it arrives and stops at the first chunk past it; a new file past the
files limit is refused before any byte; an upload the final charge refuses (a concurrent
writer took the room) withdraws the blob it created. Appends, cross-tenant copies and
imports the same. Counted in the tenant's blob directory and in the staging directory,
on both backends, in-process and over HTTP."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import nexus
from nexus.blobs import LocalBlobStore
from nexus.client import NexusClient
from nexus.service import NexusService
from nexus.settings import Settings
from nexus.tenancy import GIB
from nexus.types import Principal

MIB = 1024 * 1024
LIMIT = 3 * MIB + 100


class Source:
    """``chunks`` chunks of one MiB, distinct per source; counts how many were pulled."""

    def __init__(self, chunks: int, seed: int = 1, size: int = MIB) -> None:
        self.chunks, self.seed, self.size = chunks, seed, size
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.chunks):
            self.pulled += 1
            yield bytes([(self.seed * 31 + i) % 251]) * self.size

    def data(self) -> bytes:
        return b"".join(bytes([(self.seed * 31 + i) % 251]) * self.size
                        for i in range(self.chunks))


def _store(settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(Path(settings.data_dir) / "blobs")


def _blobs(settings: Settings, tenant: str = "acme") -> set[str]:
    return {digest for digest, _ in _store(settings).digests(tenant)}


def _staging(settings: Settings) -> list[Path]:
    staging = Path(settings.data_dir) / "blobs" / ".staging"
    return list(staging.iterdir()) if staging.is_dir() else []


@pytest.fixture
def acme(admin: NexusClient, tenant_user) -> NexusClient:  # noqa: ANN001
    admin.create_tenant("acme", plan="free", max_storage_gb=LIMIT / GIB, max_files=5)
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    return tenant_user("acme", "alice")


def _usage(admin: NexusClient) -> tuple[int, int]:
    usage = admin.get_tenant("acme")["usage"]
    return usage["storage_bytes"], usage["files"]


def test_a_stream_over_quota_stops_early_and_leaves_no_bytes(
        acme: NexusClient, admin: NexusClient, settings: Settings, transport: str) -> None:
    acme.write("/tenants/acme/uploads/small.bin", b"x" * 1000)
    before = _blobs(settings)
    source = Source(16)
    with pytest.raises(nexus.QuotaExceededError) as refused:
        acme.write("/tenants/acme/uploads/big.bin", iter(source))
    assert refused.value.details["resource"] == "storage"
    assert refused.value.details["limit"] == LIMIT
    assert _blobs(settings) == before
    assert _staging(settings) == []
    assert _usage(admin) == (1000, 1)
    with pytest.raises(nexus.NexusFileNotFoundError):
        acme.stat("/tenants/acme/uploads/big.bin")
    if transport == "local":
        # 1000 of 3 MiB + 100 bytes in use: the third MiB is the first past the room;
        # the other 13 chunks are never pulled.
        assert source.pulled == 3


def test_an_overwrite_counts_the_replaced_bytes_as_room(
        acme: NexusClient, admin: NexusClient, settings: Settings) -> None:
    acme.write("/tenants/acme/a.bin", iter(Source(3, seed=2)))
    info = acme.write("/tenants/acme/a.bin", iter(Source(3, seed=3)))  # same size: fits
    assert _blobs(settings) >= {info["etag"]}
    before = _blobs(settings)
    source = Source(5, seed=4)
    with pytest.raises(nexus.QuotaExceededError):
        acme.write("/tenants/acme/a.bin", iter(source))
    assert _blobs(settings) == before and _staging(settings) == []
    assert acme.read("/tenants/acme/a.bin") == Source(3, seed=3).data()
    assert _usage(admin) == (3 * MIB, 1)


def test_the_files_limit_is_refused_before_any_byte(
        acme: NexusClient, admin: NexusClient, settings: Settings, transport: str) -> None:
    for i in range(5):
        acme.write(f"/tenants/acme/f{i}.txt", b"%d" % i)
    before = _blobs(settings)
    source = Source(2, seed=5)
    with pytest.raises(nexus.QuotaExceededError) as refused:
        acme.write("/tenants/acme/f5.bin", iter(source))
    assert refused.value.details["resource"] == "files"
    with pytest.raises(nexus.QuotaExceededError):
        acme.append("/tenants/acme/f6.log", iter(Source(1, seed=6)))
    if transport == "local":
        assert source.pulled == 0
    assert _blobs(settings) == before and _staging(settings) == []
    # An overwrite adds no file: still allowed.
    acme.write("/tenants/acme/f4.txt", iter([b"four"]))
    assert _usage(admin)[1] == 5


def test_an_append_stream_over_quota_stops_early_and_leaves_no_bytes(
        acme: NexusClient, admin: NexusClient, settings: Settings, transport: str) -> None:
    acme.write("/tenants/acme/log.txt", iter(Source(2, seed=7)))
    before = _blobs(settings)
    source = Source(8, seed=8)
    with pytest.raises(nexus.QuotaExceededError) as refused:
        acme.append("/tenants/acme/log.txt", iter(source))
    assert refused.value.details["resource"] == "storage"
    if transport == "local":
        assert source.pulled == 2  # 2 MiB stored: the second appended MiB is past the room
    assert _blobs(settings) == before and _staging(settings) == []
    assert acme.read("/tenants/acme/log.txt") == Source(2, seed=7).data()
    assert _usage(admin) == (2 * MIB, 1)


def test_an_append_leaves_only_the_joined_content(
        acme: NexusClient, settings: Settings) -> None:
    first = acme.write("/tenants/acme/log.txt", b"first line\n")
    info = acme.append("/tenants/acme/log.txt", iter([b"second line\n"]))
    # The staged tail is withdrawn once the joined content is committed (the replaced
    # content stays for gc: a reader may still be streaming it).
    assert _blobs(settings) == {first["etag"], info["etag"]}
    # Appending to an empty file stores the tail's bytes as the file itself.
    empty = acme.write("/tenants/acme/empty.txt", b"")
    joined = acme.append("/tenants/acme/empty.txt", b"only line\n")
    assert joined["etag"] != empty["etag"]
    assert acme.read("/tenants/acme/empty.txt") == b"only line\n"
    assert joined["etag"] in _blobs(settings)


def test_a_charge_refused_at_commit_withdraws_the_blob_it_created(
        service: NexusService, admin: NexusClient, settings: Settings) -> None:
    """The room read before the stream is advisory: a concurrent writer can take it while
    the bytes arrive. The charge in the transaction refuses, and the blob goes at once."""
    admin.create_tenant("acme", plan="free", max_storage_gb=LIMIT / GIB, max_files=5)
    alice = Principal("alice", "acme")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    files = service.files

    def racing() -> Iterator[bytes]:
        yield b"a" * MIB
        # Another writer takes most of the room while this upload is in flight.
        files.write(alice, "/tenants/acme/winner.bin", b"w" * (2 * MIB))
        yield b"a" * MIB

    before = _blobs(settings)
    with pytest.raises(nexus.QuotaExceededError):
        files.write(alice, "/tenants/acme/loser.bin", racing())
    winner = admin.stat("/tenants/acme/winner.bin")["etag"]
    assert _blobs(settings) == before | {winner}
    assert _staging(settings) == []
    report = service.maintenance.fsck()
    assert report.ok and report.unreferenced_blobs == 0


def test_a_refused_blob_that_another_writer_stored_again_stays(
        service: NexusService, admin: NexusClient, settings: Settings) -> None:
    """Content-addressed: a writer of the same bytes that found the blob stored may be
    about to reference it, so a refused writer never takes it away from under it."""
    admin.create_tenant("acme", plan="free", max_storage_gb=LIMIT / GIB, max_files=5)
    store = _store(settings)
    same = b"s" * MIB
    first = store.put("acme", same)
    assert first.stamp is not None
    second = store.put("acme", same)  # a concurrent writer of the same bytes
    assert second.stamp is None
    assert not store.withdraw("acme", first)
    assert not store.withdraw("acme", second)
    assert store.exists("acme", first.digest)


def test_a_cross_tenant_copy_over_quota_leaves_no_bytes(
        acme: NexusClient, admin: NexusClient, settings: Settings) -> None:
    admin.create_tenant("bigco", plan="enterprise")
    admin.write("/tenants/bigco/big.bin", iter(Source(4, seed=9)))
    before = _blobs(settings)
    with pytest.raises(nexus.QuotaExceededError):
        admin.copy("/tenants/bigco/big.bin", "/tenants/acme/big.bin")
    assert _blobs(settings) == before and _staging(settings) == []


def test_upload_over_http_put_content_leaves_no_bytes(
        acme: NexusClient, admin: NexusClient, service: NexusService, settings: Settings,
        app) -> None:  # noqa: ANN001
    key = service.keys.admin_create_key(Principal.local_admin(), "alice", "alice",
                                        tenant_id="acme")["api_key"]
    client = TestClient(app)
    before = _blobs(settings)
    response = client.put("/api/fs/content", params={"path": "/tenants/acme/put.bin"},
                          content=iter(Source(6, seed=10)),
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code >= 400
    assert response.json()["error"]["data"]["code"] == "quota_exceeded"
    assert _blobs(settings) == before and _staging(settings) == []
    ok = client.put("/api/fs/content", params={"path": "/tenants/acme/put.bin"},
                    content=iter(Source(2, seed=10)),
                    headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200
    assert _usage(admin) == (2 * MIB, 1)


def test_happy_path_is_unchanged(acme: NexusClient, admin: NexusClient,
                                 settings: Settings, service: NexusService) -> None:
    data = Source(3, seed=11)
    info = acme.write("/tenants/acme/ok.bin", io.BytesIO(data.data()))
    assert info["size"] == 3 * MIB
    assert acme.read("/tenants/acme/ok.bin") == data.data()
    joined = acme.append("/tenants/acme/ok.bin", b"tail")
    assert joined["size"] == 3 * MIB + 4
    assert acme.read("/tenants/acme/ok.bin") == data.data() + b"tail"
    assert _usage(admin) == (3 * MIB + 4, 1)
    assert _blobs(settings) == {info["etag"], joined["etag"]}
    assert service.maintenance.fsck().ok


# -- imports -----------------------------------------------------------------------------


def _archive(admin: NexusClient) -> bytes:
    return admin.read(admin.export_tenant("bigco")["path"])


def _rewrite(archive: bytes, name: str, change: Callable[[Any], None]) -> bytes:
    """The archive with the JSON member ``name`` changed in place (order kept)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as src, \
            tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as dst:
        for member in src.getmembers():
            handle = src.extractfile(member) if member.isfile() else None
            data = handle.read() if handle is not None else None
            if member.name == name and data is not None:
                doc = json.loads(data)
                change(doc)
                data = json.dumps(doc).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


@pytest.fixture
def bigco(admin: NexusClient) -> None:
    admin.create_tenant("bigco", plan="enterprise")
    for i in range(3):
        admin.write(f"/tenants/bigco/same{i}.bin", b"same" * (MIB // 4))
    admin.write("/tenants/bigco/z-last.bin", iter(Source(2, seed=20)))


def test_an_import_over_quota_is_refused_before_any_byte(
        admin: NexusClient, settings: Settings, bigco: None) -> None:
    small = _rewrite(_archive(admin), "tenant.json",
                     lambda doc: doc["limit_overrides"].update(max_storage_gb=4 * MIB / GIB))
    with pytest.raises(nexus.QuotaExceededError):
        admin.import_tenant(small, tenant_id="newco")
    few = _rewrite(_archive(admin), "tenant.json",
                   lambda doc: doc["limit_overrides"].update(max_files=3))
    with pytest.raises(nexus.QuotaExceededError):
        admin.import_tenant(few, tenant_id="newco")
    assert _blobs(settings, "newco") == set() and _staging(settings) == []
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.get_tenant("newco")


def test_a_failed_import_withdraws_the_blobs_it_stored(
        admin: NexusClient, service: NexusService, settings: Settings, bigco: None) -> None:
    """The last member does not match its manifest hash: refused after the duplicates
    (one blob) and the last file's bytes were stored, and both are withdrawn."""
    archive = _archive(admin)

    def tamper(manifest: dict[str, Any]) -> None:
        for entry in manifest["files"]:
            if entry["path"] == "z-last.bin":
                entry["sha256"] = "0" * 64

    with pytest.raises(nexus.InvalidArgumentError, match="SHA-256"):
        admin.import_tenant(_rewrite(archive, "manifest.json", tamper), tenant_id="newco")
    assert _blobs(settings, "newco") == set() and _staging(settings) == []
    assert admin.import_tenant(archive, tenant_id="newco")["files"] == 4
    assert len(_blobs(settings, "newco")) == 2  # three identical files share one blob
    assert service.maintenance.fsck().ok
