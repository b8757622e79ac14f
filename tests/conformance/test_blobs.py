"""One contract for every blob store, run for each backend (fsspec's mixin style).

A backend's test class supplies only fixtures: ``store`` and ``leftover_staging`` (what a
failed write may have left in staging storage). Everything else is the contract in
:class:`BlobStoreContract`.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nexus.blobs import (
    CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    LocalBlobStore,
    MemoryBlobStore,
)
from nexus.errors import InvalidArgumentError, InvalidPathError

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
