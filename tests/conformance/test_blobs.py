"""One contract for every blob store, run for each backend (fsspec's mixin style).

A backend's test class supplies only fixtures: ``store``, ``leftover_staging`` (what a
failed write may have left in staging storage) and ``plant_staging`` (leaves what a writer
that died would have). Everything else is the contract in :class:`BlobStoreContract`.
The S3 backend runs against moto's standalone server (tests/_s3.py), never a mock.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests._s3 import MotoServer

from nexus.blobs import (
    CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    LocalBlobStore,
    MemoryBlobStore,
    StoredBlob,
)
from nexus.blobs import base as blob_base
from nexus.blobs.s3 import S3BlobStore
from nexus.errors import InvalidArgumentError, InvalidPathError, UnavailableError

PAYLOAD = b"nexus conformance payload\n" * 100
#: Spans several chunks and ends mid-chunk, so ranged reads cross chunk boundaries.
BIG = bytes(range(256)) * (CHUNK_SIZE * 2 // 256) + b"tail" * 1000
MISSING = "0" * 64
#: Lists staged-but-uncommitted content of a store (empty when nothing leaked).
Staging = Callable[[], list[str]]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Boom(RuntimeError):
    """Raised by a data source half-way through a stream."""


class BlobStoreContract:
    """The behaviour every :class:`BlobStore` backend must have."""

    #: Whether collect()'s check and removal are one atomic step (see nexus.blobs.s3 for
    #: the one backend where they are not).
    atomic_collect = True

    @pytest.fixture
    def plant_staging(self, store: BlobStore) -> Callable[[], None] | None:
        """Leaves in staging what a writer that died mid-upload would (None: nothing can
        outlive a writer)."""
        return None

    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError

    @pytest.fixture
    def leftover_staging(self, store: BlobStore) -> Staging:
        """A callable listing staged-but-uncommitted content (empty when nothing leaked)."""
        raise NotImplementedError

    # -- put ---------------------------------------------------------------------------

    @pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "stream",
                                      "iterator", "generator"])
    def test_put_returns_sha256_and_size(self, store: BlobStore, kind: str) -> None:
        chunks = [PAYLOAD[:100], b"", PAYLOAD[100:]]
        data = {
            "bytes": PAYLOAD,
            "bytearray": bytearray(PAYLOAD),
            "memoryview": memoryview(PAYLOAD),
            "stream": io.BytesIO(PAYLOAD),
            "iterator": iter(chunks),
            "generator": (c for c in chunks),
        }[kind]
        info = store.put("acme", data)
        assert info == BlobInfo(sha(PAYLOAD), len(PAYLOAD))
        assert store.read_bytes("acme", info.digest) == PAYLOAD
        assert store.size("acme", info.digest) == len(PAYLOAD)
        assert store.exists("acme", info.digest)

    def test_put_from_a_real_file(self, store: BlobStore, tmp_path: Path) -> None:
        source = tmp_path / "source.bin"
        source.write_bytes(BIG)
        with source.open("rb") as handle:
            info = store.put("acme", handle)
        assert info == BlobInfo(sha(BIG), len(BIG))
        assert store.read_bytes("acme", info.digest) == BIG

    def test_put_empty(self, store: BlobStore) -> None:
        info = store.put("acme", b"")
        assert info == BlobInfo(sha(b""), 0)
        assert store.read_bytes("acme", info.digest) == b""
        assert store.exists("acme", info.digest)

    def test_put_is_idempotent_and_dedups_within_a_tenant(self, store: BlobStore,
                                                           leftover_staging: Staging) -> None:
        first = store.put("acme", PAYLOAD)
        second = store.put("acme", io.BytesIO(PAYLOAD))
        third = store.put("acme", iter([PAYLOAD[:7], PAYLOAD[7:]]))
        assert first == second == third
        assert [d for d, _ in store.digests("acme")] == [first.digest]
        assert store.read_bytes("acme", first.digest) == PAYLOAD
        assert leftover_staging() == []

    def test_same_content_in_two_tenants_has_two_keys(self, store: BlobStore) -> None:
        a = store.put("acme", PAYLOAD)
        b = store.put("globex", PAYLOAD)
        assert a.digest == b.digest
        assert store.key("acme", a.digest) != store.key("globex", b.digest)
        store.delete("acme", a.digest)
        assert not store.exists("acme", a.digest)
        assert store.exists("globex", b.digest)
        assert store.read_bytes("globex", b.digest) == PAYLOAD
        with pytest.raises(BlobNotFound):
            store.open("acme", a.digest)

    def test_a_tenant_cannot_read_another_tenants_blob(self, store: BlobStore) -> None:
        info = store.put("acme", PAYLOAD)
        assert not store.exists("globex", info.digest)
        with pytest.raises(BlobNotFound):
            store.read_bytes("globex", info.digest)

    # -- data that is not bytes, and streams that fail ----------------------------------

    @pytest.mark.parametrize("make_bad", [
        lambda: "text", lambda: iter(["text"]), lambda: iter([b"ok" * CHUNK_SIZE, "text"]),
        lambda: 42, lambda: None, lambda: io.StringIO("text"),
    ], ids=["str", "iter-of-str", "iter-mixed", "int", "none", "text-stream"])
    def test_non_bytes_data_is_rejected(self, store: BlobStore, make_bad: Callable[[], object],
                                        leftover_staging: Staging) -> None:
        with pytest.raises(InvalidArgumentError):
            store.put("acme", make_bad())  # type: ignore[arg-type]
        assert list(store.digests("acme")) == []
        assert "acme" not in store.namespaces()
        assert leftover_staging() == []

    def test_failing_iterator_leaves_nothing_behind(self, store: BlobStore,
                                                    leftover_staging: Staging) -> None:
        def source() -> Iterator[bytes]:
            yield b"a" * CHUNK_SIZE
            yield b"b" * CHUNK_SIZE
            raise Boom("source died")

        with pytest.raises(Boom):
            store.put("acme", source())
        assert list(store.digests("acme")) == []
        assert "acme" not in store.namespaces()
        assert not store.exists("acme", sha(b"a" * CHUNK_SIZE + b"b" * CHUNK_SIZE))
        assert leftover_staging() == []

    def test_failing_stream_after_earlier_blob_keeps_the_earlier_one(
            self, store: BlobStore, leftover_staging: Staging) -> None:
        kept = store.put("acme", PAYLOAD)

        class Broken(io.RawIOBase):
            calls = 0

            def readable(self) -> bool:
                return True

            def read(self, size: int = -1) -> bytes:
                self.calls += 1
                if self.calls > 2:
                    raise OSError("disk went away")
                return b"x" * 1000

        with pytest.raises(OSError, match="disk went away"):
            store.put("acme", Broken())
        assert [d for d, _ in store.digests("acme")] == [kept.digest]
        assert store.read_bytes("acme", kept.digest) == PAYLOAD
        assert leftover_staging() == []

    # -- reads -------------------------------------------------------------------------

    @pytest.mark.parametrize(("start", "end"), [
        (0, None), (0, 0), (0, 1), (5, 10), (CHUNK_SIZE - 3, CHUNK_SIZE + 3),
        (CHUNK_SIZE, 2 * CHUNK_SIZE), (1, len(BIG) - 1), (len(BIG) - 10, None),
        (len(BIG) - 10, len(BIG) + 1000), (len(BIG), None), (len(BIG) + 5, None),
        (len(BIG) + 5, len(BIG) + 10), (10, 5),
    ])
    def test_ranged_reads(self, store: BlobStore, start: int, end: int | None) -> None:
        info = store.put("acme", BIG)
        chunks = list(store.open("acme", info.digest, start, end))
        assert b"".join(chunks) == BIG[start:end]
        assert all(0 < len(c) <= CHUNK_SIZE for c in chunks)
        assert store.read_bytes("acme", info.digest, start, end) == BIG[start:end]

    def test_open_streams_in_chunks(self, store: BlobStore) -> None:
        info = store.put("acme", BIG)
        chunks = list(store.open("acme", info.digest))
        assert len(chunks) == -(-len(BIG) // CHUNK_SIZE)
        assert hashlib.sha256(b"".join(chunks)).hexdigest() == info.digest

    def test_missing_blob_raises_blob_not_found(self, store: BlobStore) -> None:
        with pytest.raises(BlobNotFound):
            store.open("acme", MISSING)  # raised before the first chunk is asked for
        with pytest.raises(BlobNotFound):
            store.read_bytes("acme", MISSING)
        with pytest.raises(BlobNotFound):
            store.size("acme", MISSING)
        assert not store.exists("acme", MISSING)
        assert issubclass(BlobNotFound, KeyError)

    def test_delete_of_missing_blob_is_not_an_error(self, store: BlobStore) -> None:
        store.delete("acme", MISSING)
        info = store.put("acme", PAYLOAD)
        store.delete("acme", info.digest)
        store.delete("acme", info.digest)
        assert not store.exists("acme", info.digest)
        assert list(store.digests("acme")) == []

    # -- enumeration -------------------------------------------------------------------

    def test_digests_lists_what_was_put(self, store: BlobStore) -> None:
        contents = [b"one", b"two", b"three", PAYLOAD]
        infos = [store.put("acme", c) for c in contents]
        store.put("globex", b"other tenant")
        listed = dict(store.digests("acme"))
        assert set(listed) == {i.digest for i in infos}
        assert all(isinstance(t, float) and t > 0 for t in listed.values())
        assert {d for d, _ in store.digests("globex")} == {sha(b"other tenant")}
        assert list(store.digests("nobody")) == []

    def test_namespaces(self, store: BlobStore) -> None:
        assert store.namespaces() == []
        store.put("globex", b"g")
        store.put("acme", b"a")
        store.put("acme", b"b")
        store.put("_system", b"s")
        assert store.namespaces() == ["_system", "acme", "globex"]

    def test_copy_from_between_tenants(self, store: BlobStore) -> None:
        info = store.put("acme", BIG)
        copied = store.copy_from(store, "acme", "globex", info.digest)
        assert copied == info
        store.delete("acme", info.digest)
        assert store.read_bytes("globex", info.digest) == BIG

    def test_inventory_lists_sizes_from_one_listing(self, store: BlobStore) -> None:
        infos = [store.put("acme", c) for c in (b"", b"one", PAYLOAD, BIG)]
        store.put("globex", b"elsewhere")
        listed = {b.digest: b for b in store.inventory("acme")}
        assert set(listed) == {i.digest for i in infos}
        assert {d: b.size for d, b in listed.items()} == {i.digest: i.size for i in infos}
        assert all(isinstance(b, StoredBlob) and b.modified > 0 for b in listed.values())
        assert list(store.inventory("nobody")) == []

    def test_delete_namespace_removes_one_tenant(self, store: BlobStore) -> None:
        for n in range(7):
            store.put("acme", b"blob %d" % n)
        kept = store.put("globex", b"blob 0")
        assert store.delete_namespace("acme") == 7
        assert list(store.inventory("acme")) == []
        assert "acme" not in store.namespaces()
        assert store.read_bytes("globex", kept.digest) == b"blob 0"

    # -- garbage collection's race with a writer ------------------------------------------

    def test_restoring_content_makes_it_young_for_collect(self, store: BlobStore) -> None:
        """gc listed a blob as old; a writer stores the same content before gc removes it
        (and is about to reference it): collect must keep it."""
        info = store.put("acme", PAYLOAD)
        (listed,) = store.inventory("acme")
        cutoff = time.time()
        assert listed.modified <= cutoff + 1  # old by the cutoff, as gc judged it
        assert store.put("acme", PAYLOAD).stamp is None  # the writer re-stores it
        assert not store.collect("acme", info.digest, cutoff)
        assert store.read_bytes("acme", info.digest) == PAYLOAD
        (again,) = store.inventory("acme")
        assert again.modified >= listed.modified

    def test_collect_removes_content_not_stored_since(self, store: BlobStore) -> None:
        info = store.put("acme", PAYLOAD)
        kept = store.put("acme", b"young")
        assert not store.collect("acme", kept.digest, 0.0)  # stored after the epoch
        assert store.collect("acme", info.digest, time.time() + 60)
        assert not store.exists("acme", info.digest)
        assert not store.collect("acme", info.digest, time.time() + 60)  # gone already
        assert not store.collect("acme", MISSING, time.time() + 60)
        assert store.exists("acme", kept.digest)

    def test_collect_racing_writers_never_loses_what_they_stored(self,
                                                                  store: BlobStore) -> None:
        if not self.atomic_collect:
            pytest.skip("this backend's collect checks, then removes (one round trip "
                        "apart): the window is documented in its module")
        store.put("acme", PAYLOAD)
        cutoff = time.time()
        stop = threading.Event()
        removed = 0

        def collector() -> None:
            nonlocal removed
            while not stop.is_set():
                removed += store.collect("acme", sha(PAYLOAD), cutoff)

        thread = threading.Thread(target=collector)
        thread.start()
        try:
            for _ in range(200):
                store.put("acme", PAYLOAD)
                # Stored after the cutoff: no collect with that cutoff may remove it now.
                assert store.read_bytes("acme", sha(PAYLOAD)) == PAYLOAD
        finally:
            stop.set()
            thread.join()
        assert removed <= 1  # at most the blob stored before the cutoff

    def test_purge_staging_clears_what_dead_writers_left(
            self, store: BlobStore, leftover_staging: Staging,
            plant_staging: Callable[[], None] | None) -> None:
        store.put("acme", PAYLOAD)
        if plant_staging is None:
            assert store.purge_staging(time.time() + 60) == 0
            return
        plant_staging()
        assert leftover_staging() != []
        assert store.purge_staging(0.0) == 0  # nothing is that old
        assert store.purge_staging(time.time() + 60, dry_run=True) >= 1
        assert leftover_staging() != []
        assert store.purge_staging(time.time() + 60) >= 1
        assert leftover_staging() == []
        assert store.read_bytes("acme", sha(PAYLOAD)) == PAYLOAD

    # -- keys --------------------------------------------------------------------------

    def test_key_layout(self, store: BlobStore) -> None:
        digest = sha(PAYLOAD)
        assert store.key("acme", digest) == f"acme/{digest[:2]}/{digest}"

    @pytest.mark.parametrize("digest", [
        "../../etc/passwd", "", "0" * 63, "0" * 65, "A" * 64, "g" * 64,
        "../" + "0" * 61, "0" * 62 + "/.", "0" * 63 + "\x00", " " + "0" * 63,
        "\uff10" * 64,
    ], ids=["traversal", "empty", "short", "long", "upper", "non-hex", "dotdot-prefix",
            "slash-dot", "nul", "space", "fullwidth-digits"])
    def test_bad_digest_is_rejected(self, store: BlobStore, digest: str) -> None:
        with pytest.raises(InvalidArgumentError):
            store.key("acme", digest)
        with pytest.raises(InvalidArgumentError):
            store.open("acme", digest)
        with pytest.raises(InvalidArgumentError):
            store.exists("acme", digest)
        with pytest.raises(InvalidArgumentError):
            store.delete("acme", digest)

    @pytest.mark.parametrize("tenant", ["../escape", "", "a/b", ".staging"])
    def test_bad_tenant_is_rejected(self, store: BlobStore, tenant: str) -> None:
        with pytest.raises((InvalidArgumentError, InvalidPathError)):
            store.key(tenant, sha(PAYLOAD))


class TestLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs")

    @pytest.fixture
    def leftover_staging(self, store: BlobStore) -> Staging:
        assert isinstance(store, LocalBlobStore)
        return lambda: sorted(p.name for p in (store.root / ".staging").iterdir())

    def test_blob_is_a_file_under_its_key(self, store: BlobStore) -> None:
        assert isinstance(store, LocalBlobStore)
        info = store.put("acme", PAYLOAD)
        assert (store.root / store.key("acme", info.digest)).read_bytes() == PAYLOAD
        assert not any(store.root.joinpath(".staging").iterdir())

    def test_a_second_instance_sees_the_same_blobs(self, store: BlobStore) -> None:
        assert isinstance(store, LocalBlobStore)
        info = store.put("acme", PAYLOAD)
        assert LocalBlobStore(store.root).read_bytes("acme", info.digest) == PAYLOAD


    @pytest.fixture
    def plant_staging(self, store: BlobStore) -> Callable[[], None]:
        assert isinstance(store, LocalBlobStore)

        def plant() -> None:
            staging = store.root / ".staging"
            staging.mkdir(parents=True, exist_ok=True)
            (staging / "blob-died").write_bytes(b"half an upload")

        return plant

    def test_a_full_disk_is_a_clear_unavailable_error(self, store: BlobStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        import errno

        real_fsync = os.fsync

        def full(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "fsync", full)
        with pytest.raises(UnavailableError, match="out of space") as caught:
            store.put("acme", PAYLOAD)
        assert caught.value.details["reason"] == "no_space"
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert list(store.inventory("acme")) == []

    def test_a_refused_directory_is_a_clear_unavailable_error(
            self, store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
        import errno
        import tempfile

        def refused(*args: object, **kwargs: object) -> None:
            raise PermissionError(errno.EACCES, "Permission denied")

        # As a non-root process would meet a directory it may not write (the tests may
        # run as root, who may write anywhere).
        monkeypatch.setattr(tempfile, "mkstemp", refused)
        with pytest.raises(UnavailableError, match="refused.*Permission denied") as caught:
            store.put("acme", PAYLOAD)
        assert caught.value.details["reason"] == "permission_denied"


class TestMemoryBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self) -> BlobStore:
        return MemoryBlobStore()

    @pytest.fixture
    def leftover_staging(self, store: BlobStore) -> Staging:
        return lambda: []

    def test_instances_do_not_share_blobs(self, store: BlobStore) -> None:
        info = store.put("acme", PAYLOAD)
        assert not MemoryBlobStore().exists("acme", info.digest)
        assert MemoryBlobStore().namespaces() == []


@pytest.fixture(scope="module")
def bucket(s3_server: MotoServer) -> str:
    return s3_server.new_bucket()


class TestS3BlobStore(BlobStoreContract):
    """On moto's server: a bucket per module run (per xdist worker), a prefix per test."""

    atomic_collect = False

    @pytest.fixture
    def store(self, bucket: str) -> BlobStore:
        return S3BlobStore(bucket, f"t-{uuid.uuid4().hex[:12]}")

    @pytest.fixture
    def leftover_staging(self, store: BlobStore, s3_server: MotoServer) -> Staging:
        assert isinstance(store, S3BlobStore)
        staging = f"{store.prefix}/.staging/"

        def listed() -> list[str]:
            uploads = s3_server.client().list_multipart_uploads(
                Bucket=store.bucket, Prefix=staging).get("Uploads", [])
            return sorted([u["Key"] for u in uploads] + s3_server.keys(store.bucket, staging))

        return listed

    @pytest.fixture
    def plant_staging(self, store: BlobStore, s3_server: MotoServer) -> Callable[[], None]:
        assert isinstance(store, S3BlobStore)

        def plant() -> None:
            client = s3_server.client()
            client.create_multipart_upload(Bucket=store.bucket,
                                           Key=f"{store.prefix}/.staging/died-mid-upload")
            client.put_object(Bucket=store.bucket, Body=b"completed, never committed",
                              Key=f"{store.prefix}/.staging/died-before-commit")

        return plant

    LARGE = os.urandom(2 * 8 * 1024 * 1024 + 12345)  # three parts of a multipart upload

    def test_blobs_are_objects_under_the_prefix(self, store: BlobStore,
                                                s3_server: MotoServer) -> None:
        assert isinstance(store, S3BlobStore)
        info = store.put("acme", PAYLOAD)
        store.mark_deployment("0" * 32)
        assert sorted(s3_server.keys(store.bucket, store.prefix + "/")) == sorted([
            f"{store.prefix}/acme/{info.digest[:2]}/{info.digest}",
            f"{store.prefix}/.nexus-deployment"])
        assert store.namespaces() == ["acme"]
        assert S3BlobStore(store.bucket, store.prefix).read_bytes("acme", info.digest) \
            == PAYLOAD

    def test_a_large_blob_goes_up_in_parts_and_comes_back_in_ranges(
            self, store: BlobStore, leftover_staging: Staging) -> None:
        info = store.put("acme", iter_pieces(self.LARGE))
        assert info.digest == sha(self.LARGE) and info.stamp is not None
        assert leftover_staging() == []
        boundary = 8 * 1024 * 1024
        for start, end in [(0, None), (boundary - 5, boundary + 5), (len(self.LARGE) - 3, None)]:
            assert store.read_bytes("acme", info.digest, start, end) == self.LARGE[start:end]
        again = store.put("acme", io.BytesIO(self.LARGE))
        assert again == info and again.stamp is None
        assert leftover_staging() == []

    def test_a_source_failing_after_a_part_aborts_the_upload(
            self, store: BlobStore, leftover_staging: Staging) -> None:
        def source() -> Iterator[bytes]:
            yield self.LARGE[:9 * 1024 * 1024]  # one part uploaded
            raise Boom("client went away")

        with pytest.raises(Boom):
            store.put("acme", source())
        assert leftover_staging() == []
        assert list(store.inventory("acme")) == []

    def test_copy_within_the_bucket_stays_inside_s3(self, store: BlobStore) -> None:
        info = store.put("acme", BIG)
        served = blob_base.traffic.bytes_out
        copied = store.copy_from(store, "acme", "globex", info.digest)
        assert copied == info and copied.stamp is not None
        assert blob_base.traffic.bytes_out == served  # no byte came through this process
        assert store.copy_from(store, "acme", "globex", info.digest).stamp is None
        assert store.read_bytes("globex", info.digest) == BIG
        with pytest.raises(BlobNotFound):
            store.copy_from(store, "acme", "globex", MISSING)

    def test_batch_delete_of_a_namespace(self, store: BlobStore,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        from nexus.blobs import s3

        monkeypatch.setattr(s3, "_DELETE_BATCH", 3)  # 8 blobs: three DeleteObjects calls
        for n in range(8):
            store.put("acme", b"%d" % n)
        assert store.delete_namespace("acme") == 8
        assert list(store.inventory("acme")) == []

    def test_a_missing_bucket_is_refused_with_its_name(self, s3_server: MotoServer) -> None:
        store = S3BlobStore("nexus-no-such-bucket", "p")
        with pytest.raises(UnavailableError, match="nexus-no-such-bucket.*does not exist"):
            store.deployment_id()
        with pytest.raises(UnavailableError, match="does not create buckets"):
            store.put("acme", PAYLOAD)

    def test_an_unreachable_server_is_unavailable(self, s3_server: MotoServer) -> None:
        import boto3
        from botocore.config import Config

        from nexus._serve import free_port

        client = boto3.session.Session().client(
            "s3", endpoint_url=f"http://127.0.0.1:{free_port()}",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2))
        store = S3BlobStore("bucket", client=client)
        with pytest.raises(UnavailableError, match="cannot reach S3"):
            store.read_bytes("acme", MISSING)
        with pytest.raises(UnavailableError, match="cannot reach S3"):
            store.put("acme", PAYLOAD)

    def test_bad_credentials_are_a_clear_error(self, s3_server: MotoServer,
                                               bucket: str) -> None:
        import boto3

        # moto checks credentials only when told to; its server accepts any key, so a
        # denial is produced by a bucket policy that refuses everyone.
        client = s3_server.client()
        denied = s3_server.new_bucket()
        client.put_bucket_policy(Bucket=denied, Policy=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
            f'"Action":"s3:*","Resource":["arn:aws:s3:::{denied}/*"]}}]}}'))
        store = S3BlobStore(denied, client=boto3.session.Session().client("s3"))
        try:
            store.read_bytes("acme", MISSING)
        except UnavailableError as exc:
            assert "refused" in str(exc) and "credentials" in str(exc)
        except BlobNotFound:
            pytest.skip("this moto server does not enforce bucket policies")


def iter_pieces(data: bytes, size: int = 300_000) -> Iterator[bytes]:
    """``data`` in pieces that do not line up with the part size."""
    for start in range(0, len(data), size):
        yield data[start:start + size]
