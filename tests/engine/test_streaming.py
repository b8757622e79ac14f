"""Large files stream through the engine in bounded memory, and ranges read exactly.

The write's memory bound is measured on the in-process transport only: over HTTP the
suite runs the app through Starlette's ``TestClient``, which joins the whole request body
in this same process (``request.read()``), so that RSS says nothing about Nexus. Streamed
reads are bounded on both transports.
"""

from __future__ import annotations

import gc
import hashlib
import random
import threading
from collections.abc import Iterator
from types import TracebackType

import psutil
import pytest

import nexus
from nexus.client import NexusClient

#: The client suite: every test here runs through the sync and the async client.
pytestmark = pytest.mark.both_clients

MiB = 1024 * 1024
BIG_CHUNKS = 200  # 200 MiB
RSS_LIMIT = 64 * MiB


def chunk(seed: int, index: int, size: int = MiB) -> bytes:
    """Deterministic pseudo-random content: chunk ``index`` of file ``seed``."""
    return random.Random(seed * 100_003 + index).randbytes(size)


def chunks(seed: int, count: int, last: int = MiB) -> Iterator[bytes]:
    for i in range(count):
        yield chunk(seed, i, MiB if i < count - 1 else last)


class PeakRss:
    """Samples this process's RSS every ``interval`` seconds; ``growth`` is peak - start."""

    def __init__(self, interval: float = 0.01) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.baseline = 0
        self.peak = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.baseline = self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def test_rss_sampler_sees_a_large_allocation() -> None:
    with PeakRss() as rss:
        blob = bytearray(96 * MiB)
        blob[::4096] = b"x" * len(blob[::4096])  # touch every page
        threading.Event().wait(0.05)
        del blob
    assert rss.growth > 64 * MiB


def test_200_mib_streams_in_and_out_in_bounded_memory(admin: NexusClient,
                                                      transport: str) -> None:
    path = "/tenants/acme/big/200mib.bin"
    expected = hashlib.sha256()

    def source() -> Iterator[bytes]:
        for data in chunks(seed=1, count=BIG_CHUNKS):
            expected.update(data)
            yield data

    with PeakRss() as write_rss:
        info = admin.write(path, source())
    assert info["size"] == BIG_CHUNKS * MiB
    assert info["etag"] == expected.hexdigest()
    assert admin.stat(path)["size"] == BIG_CHUNKS * MiB

    got = hashlib.sha256()
    total = 0
    with PeakRss() as read_rss:
        for piece in admin.read_stream(path):
            got.update(piece)
            total += len(piece)
    assert total == BIG_CHUNKS * MiB
    assert got.hexdigest() == expected.hexdigest()
    assert read_rss.growth < RSS_LIMIT, f"read grew RSS by {read_rss.growth / MiB:.0f} MiB"
    if transport == "local":  # TestClient joins the whole upload body in memory (~400 MiB)
        assert write_rss.growth < RSS_LIMIT, f"write grew RSS by {write_rss.growth / MiB:.0f} MiB"


RANGE_SEED, RANGE_CHUNKS, RANGE_LAST = 7, 9, 12_345  # 8 MiB + 12,345 bytes
RANGE_SIZE = (RANGE_CHUNKS - 1) * MiB + RANGE_LAST


@pytest.fixture
def ranged_file(admin: NexusClient) -> tuple[str, bytes]:
    path = "/tenants/acme/ranges.bin"
    content = b"".join(chunks(RANGE_SEED, RANGE_CHUNKS, RANGE_LAST))
    assert len(content) == RANGE_SIZE
    admin.write(path, chunks(RANGE_SEED, RANGE_CHUNKS, RANGE_LAST))
    return path, content


RANGES = [
    (0, None), (0, 0), (0, 1), (1, 1), (MiB - 1, 2), (MiB, MiB), (MiB - 7, MiB + 14),
    (3 * MiB + 5, 4 * MiB + 3), (RANGE_SIZE - 1, None), (RANGE_SIZE - 1, 1),
    (RANGE_SIZE - 100, 1000), (RANGE_SIZE, None), (RANGE_SIZE, 10), (RANGE_SIZE + 1, None),
    (RANGE_SIZE + MiB, 5), (12_345, None), (0, RANGE_SIZE), (0, RANGE_SIZE + 1),
]


@pytest.mark.parametrize(("offset", "length"), RANGES)
def test_ranged_read(admin: NexusClient, ranged_file: tuple[str, bytes], offset: int,
                     length: int | None) -> None:
    path, content = ranged_file
    end = None if length is None else offset + length
    assert admin.read(path, offset=offset, length=length) == content[offset:end]
    assert b"".join(admin.read_stream(path, offset=offset, length=length)) == content[offset:end]


def test_many_ranges_reassemble_the_file(admin: NexusClient,
                                         ranged_file: tuple[str, bytes]) -> None:
    path, content = ranged_file
    rnd = random.Random(99)
    cuts = sorted({0, RANGE_SIZE, *(rnd.randrange(RANGE_SIZE) for _ in range(15))})
    parts = [admin.read(path, offset=a, length=b - a) for a, b in zip(cuts, cuts[1:], strict=False)]
    assert [len(p) for p in parts] == [b - a for a, b in zip(cuts, cuts[1:], strict=False)]
    assert b"".join(parts) == content


@pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1), (-5, 5)])
def test_negative_range_is_rejected(admin: NexusClient, ranged_file: tuple[str, bytes],
                                    offset: int, length: int | None) -> None:
    path, _ = ranged_file
    with pytest.raises(nexus.InvalidArgumentError):
        admin.read(path, offset=offset, length=length)


def test_read_stream_is_lazy_and_chunked(admin: NexusClient,
                                         ranged_file: tuple[str, bytes]) -> None:
    path, content = ranged_file
    stream = iter(admin.read_stream(path))
    first = next(stream)
    assert 0 < len(first) <= MiB
    assert content.startswith(first)
    rest = b"".join(stream)
    assert first + rest == content


def test_append_streams_from_an_iterator(admin: NexusClient, transport: str,
                                         request: pytest.FixtureRequest) -> None:
    path = "/tenants/acme/appended.bin"
    admin.write(path, chunk(3, 0, 1000))
    info = admin.append(path, chunks(3, 4))
    expected = chunk(3, 0, 1000) + b"".join(chunks(3, 4))
    assert info["size"] == len(expected)
    assert info["etag"] == hashlib.sha256(expected).hexdigest()
    assert admin.read(path) == expected
