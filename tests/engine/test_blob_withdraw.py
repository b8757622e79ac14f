"""``BlobStore.withdraw``: a refused write takes back the blob its put created, and never
one that a writer of the same content stored again (who may be about to reference it).
Run on every backend that implements it."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nexus.blobs import BlobStore, LocalBlobStore, MemoryBlobStore

DATA = b"withdrawn content\n" * 1000


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return LocalBlobStore(tmp_path / "blobs") if request.param == "local" else MemoryBlobStore()


def _staging(store: BlobStore) -> list[Path]:
    if not isinstance(store, LocalBlobStore) or not (store.root / ".staging").is_dir():
        return []
    return list((store.root / ".staging").iterdir())


def test_a_blob_the_put_created_is_withdrawn(store: BlobStore) -> None:
    blob = store.put("acme", DATA)
    assert blob.stamp is not None
    assert store.withdraw("acme", blob)
    assert not store.exists("acme", blob.digest)
    assert _staging(store) == []
    assert not store.withdraw("acme", blob)  # gone already: nothing to do


def test_a_put_that_found_the_content_withdraws_nothing(store: BlobStore) -> None:
    first = store.put("acme", DATA)
    again = store.put("acme", DATA)
    assert again.stamp is None and again == first
    assert not store.withdraw("acme", again)
    # The first writer no longer may: the second may be about to reference the blob.
    assert not store.withdraw("acme", first)
    assert store.read_bytes("acme", first.digest) == DATA


def test_the_same_content_in_another_tenant_is_its_own_blob(store: BlobStore) -> None:
    acme, beta = store.put("acme", DATA), store.put("beta", DATA)
    assert acme.stamp is not None and beta.stamp is not None
    assert store.withdraw("acme", acme)
    assert store.exists("beta", beta.digest)


def test_concurrent_writers_of_one_content_create_it_once(store: BlobStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        blobs = list(pool.map(lambda _: store.put("acme", DATA), range(32)))
    assert {b.digest for b in blobs} == {hashlib.sha256(DATA).hexdigest()}
    assert sum(b.stamp is not None for b in blobs) == 1
    assert not any(store.withdraw("acme", b) for b in blobs)  # 31 stored it again
    assert store.read_bytes("acme", blobs[0].digest) == DATA
    assert _staging(store) == []


def test_a_withdrawn_blob_can_be_stored_again(store: BlobStore) -> None:
    blob = store.put("acme", DATA)
    assert store.withdraw("acme", blob)
    again = store.put("acme", DATA)
    assert again.stamp is not None
    assert store.read_bytes("acme", again.digest) == DATA
