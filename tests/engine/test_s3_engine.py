"""The whole engine on an S3 blob store (moto's server), on SQLite and PostgreSQL: files
written, read in ranges, overwritten, copied, deleted, collected and checked, with the
content in the bucket and none on local disk; ``nexus serve --blob-url s3://…`` serving a
file; and garbage collection racing a writer of the same content on every backend."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._s3 import MotoServer, S3Target

from nexus.blobs import BlobStore, StoredBlob
from nexus.service import NexusService, bootstrap
from nexus.service.maintenance import MISSING_BLOB
from nexus.settings import Settings
from nexus.types import Principal

ADMIN = Principal.local_admin()
#: More than one multipart part (8 MiB), so the large-object path runs end to end.
LARGE = os.urandom(9 * 1024 * 1024 + 777)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3_url(s3_blob_url: S3Target) -> str:
    return s3_blob_url.url


@pytest.fixture
def s3_service(settings: Settings, s3_url: str) -> Iterator[NexusService]:
    svc = bootstrap(dataclasses.replace(settings, blob_url=s3_url))
    yield svc
    svc.close()


def _bucket_keys(server: MotoServer, url: str, tenant: str) -> set[str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return {k.rsplit("/", 1)[1] for k in server.keys(bucket, f"{prefix}/{tenant}/")}


def _local_blob_files(data_dir: Path) -> list[Path]:
    blobs = data_dir / "blobs"
    return [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []


def test_files_live_in_the_bucket(s3_service: NexusService, s3_server: MotoServer,
                                  s3_url: str, settings: Settings) -> None:
    files = s3_service.files
    files.write(ADMIN, "/tenants/acme/small.txt", b"small\n")
    files.write(ADMIN, "/tenants/acme/large.bin", iter([LARGE[:5_000_000], LARGE[5_000_000:]]))
    assert files.read(ADMIN, "/tenants/acme/large.bin") == LARGE
    assert files.read(ADMIN, "/tenants/acme/large.bin", offset=8 * 1024 * 1024 - 10,
                      length=20) == LARGE[8 * 1024 * 1024 - 10:8 * 1024 * 1024 + 10]
    assert _bucket_keys(s3_server, s3_url, "acme") >= {sha(b"small\n"), sha(LARGE)}
    assert _local_blob_files(settings.data_dir) == []

    files.write(ADMIN, "/tenants/acme/small.txt", b"overwritten\n")
    assert files.read(ADMIN, "/tenants/acme/small.txt") == b"overwritten\n"
    files.copy(ADMIN, "/tenants/acme/large.bin", "/tenants/beta/large.bin")
    assert files.read(ADMIN, "/tenants/beta/large.bin") == LARGE
    assert sha(LARGE) in _bucket_keys(s3_server, s3_url, "beta")
    files.delete(ADMIN, "/tenants/acme/large.bin")

    report = s3_service.maintenance.fsck(deep=True)
    assert report.ok, report.problems
    assert report.unreferenced_blobs == 2  # the overwritten and the deleted content

    gc = s3_service.maintenance.gc(grace_seconds=0)
    assert gc.blobs_removed == 2
    assert _bucket_keys(s3_server, s3_url, "acme") == {sha(b"overwritten\n")}
    assert files.read(ADMIN, "/tenants/beta/large.bin") == LARGE
    assert s3_service.maintenance.fsck().ok
    assert _local_blob_files(settings.data_dir) == []


def test_fsck_finds_an_object_removed_behind_its_back(s3_service: NexusService,
                                                      s3_server: MotoServer,
                                                      s3_url: str) -> None:
    s3_service.files.write(ADMIN, "/tenants/acme/doc.txt", b"will vanish")
    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    digest = sha(b"will vanish")
    s3_server.client().delete_object(Bucket=bucket,
                                     Key=f"{prefix}/acme/{digest[:2]}/{digest}")
    report = s3_service.maintenance.fsck()
    assert [p.kind for p in report.problems] == [MISSING_BLOB]


def test_deleting_a_tenant_empties_its_prefix(s3_service: NexusService,
                                              s3_server: MotoServer, s3_url: str) -> None:
    s3_service.tenants.create_tenant(ADMIN, "gone", name="Gone")
    for n in range(5):
        s3_service.files.write(ADMIN, f"/tenants/gone/f{n}.txt", b"content %d" % n)
    s3_service.files.write(ADMIN, "/tenants/kept/f.txt", b"content 0")
    assert len(_bucket_keys(s3_server, s3_url, "gone")) == 5
    s3_service.files.delete_tenant(ADMIN, "gone", confirm=True)
    assert _bucket_keys(s3_server, s3_url, "gone") == set()
    assert s3_service.files.read(ADMIN, "/tenants/kept/f.txt") == b"content 0"


# -- gc racing a writer of the same content, on every backend ------------------------------

@pytest.fixture(params=["file", "memory", "s3"])
def any_blob_service(request: pytest.FixtureRequest, settings: Settings) -> Iterator[NexusService]:
    url = {"file": None, "memory": "memory://"}.get(request.param)
    if request.param == "s3":
        url = request.getfixturevalue("s3_blob_url").url
    svc = bootstrap(dataclasses.replace(settings, blob_url=url))
    yield svc
    svc.close()


@pytest.mark.parametrize("moment", ["after_listing", "before_removal"])
def test_gc_spares_content_a_writer_stores_again_while_it_runs(
        any_blob_service: NexusService, monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    """The content of a deleted file is garbage; gc lists it as old. Then — right after
    the listing, or after gc read the references and is about to remove it — a writer
    stores the same content again (finding it there) and commits a file that references
    it. gc must leave it, and fsck must find every file's blob."""
    service = any_blob_service
    content = b"content that comes back\n" * 50
    service.files.write(ADMIN, "/tenants/acme/old.txt", content)
    service.files.delete(ADMIN, "/tenants/acme/old.txt")
    blobs: BlobStore = service.files._blobs
    listing, collect = blobs.inventory, blobs.collect
    written = []

    def writer() -> None:
        if not written:
            service.files.write(ADMIN, "/tenants/acme/new.txt", content)
            written.append(True)

    def listing_then_a_writer(tenant_id: str) -> Iterator[StoredBlob]:
        listed = list(listing(tenant_id))  # gc has listed: the blob looks old
        if tenant_id == "acme":
            writer()
        return iter(listed)

    def a_writer_then_collect(tenant_id: str, digest: str, before: float) -> bool:
        writer()  # gc has read the references: new.txt is not among them
        return collect(tenant_id, digest, before)

    if moment == "after_listing":
        monkeypatch.setattr(blobs, "inventory", listing_then_a_writer)
    else:
        monkeypatch.setattr(blobs, "collect", a_writer_then_collect)
    report = service.maintenance.gc(grace_seconds=0)
    monkeypatch.undo()
    assert written and report.blobs_removed == 0
    assert service.files.read(ADMIN, "/tenants/acme/new.txt") == content
    assert service.maintenance.fsck(deep=True).ok
    # With no writer racing it, the same gc collects garbage of that age.
    service.files.delete(ADMIN, "/tenants/acme/new.txt")
    assert service.maintenance.gc(grace_seconds=0).blobs_removed == 1


def test_nexus_serve_with_an_s3_blob_url(tmp_path: Path, database_url: str | None,
                                         s3_blob_url: S3Target, s3_server: MotoServer) -> None:
    """``nexus serve --blob-url s3://…`` reaches moto through the standard AWS variables
    (set by the s3_server fixture, inherited by the process) and keeps content there."""
    from tests.serving import NexusProcess

    url = s3_blob_url.url
    data_dir = tmp_path / "data"
    with NexusProcess(data_dir, database_url, extra_args=["--blob-url", url]) as server, \
            server.client() as admin:
        admin.write("/tenants/acme/served.bin", LARGE)
        assert admin.read("/tenants/acme/served.bin") == LARGE
    assert _bucket_keys(s3_server, url, "acme") == {sha(LARGE)}
    assert _local_blob_files(data_dir) == []


def test_nexus_serve_refuses_a_bucket_that_does_not_exist(tmp_path: Path,
                                                          s3_server: MotoServer) -> None:
    import subprocess

    from tests.serving import NEXUS

    result = subprocess.run(
        [*NEXUS, "serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--blob-url", "s3://nexus-missing-bucket/p"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 6, result.stdout + result.stderr
    assert "nexus-missing-bucket" in result.stdout + result.stderr
    assert "does not exist" in result.stdout + result.stderr
