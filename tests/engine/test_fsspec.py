"""``nexus://`` through fsspec: fsspec's own abstract test suite, then what data tools do
with it (pandas), Python's error classes, and the entry point that finds it."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

import fsspec
import pytest
from fsspec.tests.abstract import AbstractCopyTests as _Copy
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract import AbstractGetTests as _Get
from fsspec.tests.abstract import AbstractOpenTests as _Open
from fsspec.tests.abstract import AbstractPipeTests as _Pipe
from fsspec.tests.abstract import AbstractPutTests as _Put

from nexus.client import LocalTransport, NexusClient
from nexus.fsspec import NexusFileSystem
from nexus.service import NexusService
from nexus.types import Principal


class NexusFixtures(AbstractFixtures):
    # fsspec's suite checks the filesystem layer, which reaches the engine only through
    # the client: it runs on SQLite; the tests below run on both databases.
    @pytest.fixture
    def backend(self) -> str:
        return "sqlite"

    @pytest.fixture
    def fs(self, service: NexusService) -> Iterator[NexusFileSystem]:
        client = NexusClient(LocalTransport(service, Principal.local_admin(),
                                            owns_service=False))
        client.create_tenant("fsspec")
        yield NexusFileSystem(client=client, skip_instance_cache=True)

    @pytest.fixture
    def fs_join(self):  # noqa: ANN201
        return posixpath.join

    @pytest.fixture
    def fs_path(self) -> str:
        return "/tenants/fsspec/work"


class TestCopy(NexusFixtures, _Copy):
    pass


class TestGet(NexusFixtures, _Get):
    pass


class TestPut(NexusFixtures, _Put):
    pass


class TestOpen(NexusFixtures, _Open):
    pass


class TestPipe(NexusFixtures, _Pipe):
    pass


# -- beyond the abstract suite: what data tools and users rely on -----------------------


@pytest.fixture
def acme(service: NexusService, connect_as) -> NexusClient:  # noqa: ANN001
    admin = NexusClient(LocalTransport(service, Principal.local_admin(), owns_service=False))
    admin.create_tenant("acme")
    admin.create_tenant("globex")
    admin.write("/tenants/globex/secret.csv", b"x\n1\n")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"),
                       tenant_id="acme")
    return connect_as(principal=Principal(user_id="alice", tenant_id="acme"))


def test_the_entry_point_registers_the_nexus_protocol(tmp_path) -> None:  # noqa: ANN001
    fs = fsspec.filesystem("nexus", data_dir=str(tmp_path / "data"), skip_instance_cache=True)
    assert isinstance(fs, NexusFileSystem)
    fs.pipe_file("nexus:///tenants/t/a.txt", b"via the entry point")
    assert fs.cat_file("nexus:///tenants/t/a.txt") == b"via the entry point"
    with fsspec.open("nexus:///tenants/t/a.txt", "rb", data_dir=str(tmp_path / "data")) as f:
        assert f.read() == b"via the entry point"
    fs.client.close()


def test_pandas_round_trip(acme: NexusClient) -> None:
    pandas = pytest.importorskip("pandas")
    options = {"client": acme}
    frame = pandas.DataFrame({"city": ["Oslo", "Lima"], "people": [709_000, 10_000_000]})
    frame.to_csv("nexus:///tenants/acme/cities.csv", index=False, storage_options=options)
    assert acme.read("/tenants/acme/cities.csv").startswith(b"city,people\n")
    back = pandas.read_csv("nexus:///tenants/acme/cities.csv", storage_options=options)
    assert back.equals(frame)


def test_errors_are_pythons_own(acme: NexusClient) -> None:
    fs = NexusFileSystem(client=acme, skip_instance_cache=True)
    with pytest.raises(FileNotFoundError):
        fs.cat_file("/tenants/acme/missing.txt")
    with pytest.raises(FileNotFoundError):
        fs.info("/tenants/acme/missing.txt")
    with pytest.raises(PermissionError):
        fs.cat_file("/tenants/globex/secret.csv")
    with pytest.raises(PermissionError):
        fs.pipe_file("/tenants/globex/planted.csv", b"x")
    with pytest.raises(PermissionError):
        fs.ls("/tenants/globex")
    assert not fs.exists("/tenants/acme/missing.txt")
    fs.pipe_file("/tenants/acme/a.txt", b"a")
    with pytest.raises(IsADirectoryError):
        fs.rm("/tenants/acme")
    assert fs.exists("/tenants/acme/a.txt")


class _CountingReads(LocalTransport):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[int, int | None]] = []

    def handle(self, request):  # noqa: ANN001, ANN201
        if request.method == "read":
            self.reads.append((request.params.get("offset", 0), request.params.get("length")))
        return super().handle(request)


def test_reads_are_ranged_never_the_whole_file(service: NexusService) -> None:
    transport = _CountingReads(service, Principal.local_admin(), owns_service=False)
    fs = NexusFileSystem(client=NexusClient(transport), skip_instance_cache=True)
    content = bytes(range(256)) * 4096  # 1 MiB
    fs.pipe_file("/tenants/t/big.bin", content)
    with fs.open("/tenants/t/big.bin", "rb", block_size=64 * 1024) as f:
        f.seek(700_000)
        assert f.read(100) == content[700_000:700_100]
    assert fs.cat_file("/tenants/t/big.bin", start=-10) == content[-10:]
    assert fs.cat_file("/tenants/t/big.bin", start=5, end=9) == content[5:9]
    fetched = [len(content) - offset if length is None else length
               for offset, length in transport.reads]
    assert fetched and sum(fetched) <= 128 * 1024  # of a 1 MiB file


def test_find_and_walk_see_the_tree(acme: NexusClient) -> None:
    fs = NexusFileSystem(client=acme, skip_instance_cache=True)
    for name in ("a/1.txt", "a/b/2.txt", "c.txt"):
        fs.pipe_file(f"/tenants/acme/tree/{name}", name.encode())
    assert fs.find("/tenants/acme/tree") == ["/tenants/acme/tree/a/1.txt",
                                             "/tenants/acme/tree/a/b/2.txt",
                                             "/tenants/acme/tree/c.txt"]
    assert fs.find("/tenants/acme/tree", maxdepth=1) == ["/tenants/acme/tree/c.txt"]
    assert "/tenants/acme/tree/a/b" in fs.find("/tenants/acme/tree", withdirs=True)
    assert fs.du("/tenants/acme/tree") == len(b"a/1.txt" + b"a/b/2.txt" + b"c.txt")
    fs.mv("/tenants/acme/tree/a", "/tenants/acme/moved", recursive=True)
    assert fs.cat_file("/tenants/acme/moved/b/2.txt") == b"a/b/2.txt"
    fs.rm("/tenants/acme/tree", recursive=True)
    assert not fs.exists("/tenants/acme/tree")
