"""Revocation mid-stream (issue #14): a download or upload in progress re-checks its key,
its tenant and its permission every second (of an injected monotonic clock here) or
every 4 MiB, and ends with the error a new request would get — a share revoked 1 MiB into
a 12 MiB download delivers no more than what was already on its way.

In-process and over HTTP (Starlette's TestClient, then one real ``nexus serve`` where the
client sees a truncated body), on both backends. No sleeps: the re-check interval is
driven by :class:`FakeClock`, the span by the bytes themselves.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import nexus
from nexus.blobs import LocalBlobStore
from nexus.client import NexusClient
from nexus.service import NexusService
from nexus.service.streams import StreamChecks
from nexus.settings import Settings
from nexus.types import Principal
from tests.serving import NexusProcess, tenant_key

MIB = 1024 * 1024
SIZE = 12 * MIB
SOURCE = "/tenants/acme/shared/big.bin"
ALIAS = "/tenants/beta/shared/from-acme/big.bin"
ADMIN = Principal.local_admin()


def content(size: int = SIZE) -> bytes:
    return b"".join(bytes([i % 251]) * MIB for i in range(size // MIB))


class FakeClock:
    """A monotonic clock that moves only when told; counts its readings."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(service: NexusService) -> FakeClock:
    fake = FakeClock()
    service.files.stream_checks = StreamChecks(clock=fake)
    return fake


@pytest.fixture
def world(service: NexusService, admin: NexusClient, clock: FakeClock) -> None:
    for tenant, owner in (("acme", "alice"), ("beta", "bob")):
        admin.create_tenant(tenant, plan="pro")
        admin.rebac_create(("user", owner), "owner", ("file", f"/tenants/{tenant}"))
    data = content()
    admin.write(SOURCE, iter(data[i:i + MIB] for i in range(0, SIZE, MIB)))


def key_of(service: NexusService, tenant: str, user: str) -> tuple[str, str]:
    created = service.keys.admin_create_key(ADMIN, user, user, tenant_id=tenant)
    return str(created["api_key"]), str(created["key_id"])


def drain(stream: Iterator[bytes], received: int) -> int:
    for chunk in stream:
        received += len(chunk)
    return received


def new_request_error(call: Callable[[], object]) -> type[BaseException]:
    with pytest.raises(nexus.NexusError) as refused:
        call()
    return type(refused.value)


def _ends_after_first_chunk(stream: Iterator[bytes], revoke: Callable[[], None],
                            clock: FakeClock, expected: type[BaseException]) -> int:
    received = len(next(stream))
    revoke()
    clock.advance(1.5)
    with pytest.raises(expected):
        received = drain(stream, received)
    return received


# -- downloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("via", [ALIAS, SOURCE])
def test_a_share_revoked_mid_download_ends_the_stream(
        world: None, connect_as, service: NexusService, clock: FakeClock,  # noqa: ANN001
        transport: str, via: str) -> None:
    alice, _ = key_of(service, "acme", "alice")
    bob_key, _ = key_of(service, "beta", "bob")
    share = connect_as(api_key=alice).create_share(SOURCE, "beta")
    bob = connect_as(api_key=bob_key)
    stream = bob.read_stream(via)
    received = len(next(stream))
    connect_as(api_key=alice).revoke_share(share["share_id"])
    expected = new_request_error(lambda: bob.read(via, length=10))
    assert expected in (nexus.NexusPermissionError, nexus.NexusFileNotFoundError)
    clock.advance(1.5)
    with pytest.raises(expected):
        received = drain(stream, received)
    # In-process nothing past the first chunk; over HTTP at most the chunk that was
    # already on its way.
    assert received <= (1 if transport == "local" else 2) * MIB < SIZE


def test_a_share_revoked_mid_download_ends_it_within_4_mib_without_time_passing(
        world: None, connect_as, service: NexusService, clock: FakeClock,  # noqa: ANN001
        transport: str) -> None:
    alice, _ = key_of(service, "acme", "alice")
    bob_key, _ = key_of(service, "beta", "bob")
    share = connect_as(api_key=alice).create_share(SOURCE, "beta")
    stream = connect_as(api_key=bob_key).read_stream(SOURCE)
    received = len(next(stream))
    connect_as(api_key=alice).revoke_share(share["share_id"])
    with pytest.raises(nexus.NexusPermissionError):
        received = drain(stream, received)
    assert received <= (4 if transport == "local" else 5) * MIB


def test_a_key_revoked_mid_download_ends_the_stream(
        world: None, connect_as, service: NexusService, clock: FakeClock,  # noqa: ANN001
        transport: str) -> None:
    key, key_id = key_of(service, "acme", "alice")
    stream = connect_as(api_key=key).read_stream(SOURCE)
    received = _ends_after_first_chunk(
        stream, lambda: service.keys.admin_revoke_key(ADMIN, key_id), clock,
        nexus.AuthenticationError)
    assert received < SIZE


def test_a_key_expired_mid_download_ends_the_stream(
        world: None, connect_as, service: NexusService, clock: FakeClock,  # noqa: ANN001
        transport: str) -> None:
    key, key_id = key_of(service, "acme", "alice")
    stream = connect_as(api_key=key).read_stream(SOURCE)
    received = _ends_after_first_chunk(
        stream, lambda: service.keys.admin_update_key(ADMIN, key_id,
                                                      expires_at=time.time() - 1),
        clock, nexus.AuthenticationError)
    assert received < SIZE


def test_a_tenant_suspended_mid_download_ends_the_stream(
        world: None, connect_as, service: NexusService, admin: NexusClient,  # noqa: ANN001
        clock: FakeClock, transport: str) -> None:
    key, _ = key_of(service, "acme", "alice")
    stream = connect_as(api_key=key).read_stream(SOURCE)
    received = _ends_after_first_chunk(
        stream, lambda: admin.suspend_tenant("acme", reason="unpaid"), clock,
        nexus.TenantSuspendedError)
    assert received < SIZE


def test_a_principal_without_a_key_is_rechecked_too(
        world: None, tenant_user, admin: NexusClient, clock: FakeClock) -> None:  # noqa: ANN001
    alice = tenant_user("acme", "alice")
    stream = alice.read_stream(SOURCE)
    _ends_after_first_chunk(stream, lambda: admin.rebac_delete(
        subject=("user", "alice"), relation="owner", object=("file", "/tenants/acme"),
        tenant_id="acme"), clock, nexus.NexusPermissionError)


def test_an_unrevoked_stream_is_complete_and_a_small_read_is_never_rechecked(
        world: None, connect_as, service: NexusService, admin: NexusClient,  # noqa: ANN001
        clock: FakeClock, transport: str) -> None:
    key, _ = key_of(service, "acme", "alice")
    alice = connect_as(api_key=key)
    alice.write("/tenants/acme/small.txt", b"small" * 1000)
    clock.readings = 0
    assert alice.read("/tenants/acme/small.txt") == b"small" * 1000
    assert alice.read(SOURCE, offset=5 * MIB, length=MIB) == content()[5 * MIB:6 * MIB]
    assert clock.readings == 0  # one chunk: no re-check, not even a clock reading
    got = b""
    for chunk in alice.read_stream(SOURCE):
        got += chunk
        clock.advance(0.4)
    assert got == content()


# -- uploads -----------------------------------------------------------------------------


def _tenant_blobs(settings: Settings, tenant: str = "acme") -> set[str]:
    return {d for d, _ in LocalBlobStore(Path(settings.data_dir) / "blobs").digests(tenant)}


def _staging(settings: Settings) -> list[Path]:
    staging = Path(settings.data_dir) / "blobs" / ".staging"
    return list(staging.iterdir()) if staging.is_dir() else []


def _upload(pulled: list[int], on_second: Callable[[], None], clock: FakeClock,
            chunks: int = 6) -> Iterator[bytes]:
    for i in range(chunks):
        if i == 1:
            on_second()
            clock.advance(1.5)
        pulled.append(i)
        yield bytes([i + 1]) * MIB


@pytest.mark.parametrize("what", ["key", "permission", "tenant"])
def test_a_grant_lapsing_mid_upload_refuses_it_and_leaves_no_bytes(
        world: None, connect_as, service: NexusService, admin: NexusClient,  # noqa: ANN001
        clock: FakeClock, settings: Settings, transport: str, what: str) -> None:
    key, key_id = key_of(service, "acme", "carol")
    grant = admin.rebac_create(("user", "carol"), "can_write", ("file", "/tenants/acme/uploads"),
                               tenant_id="acme")
    carol = connect_as(api_key=key)
    revoke, error = {
        "key": (lambda: service.keys.admin_revoke_key(ADMIN, key_id),
                nexus.AuthenticationError),
        "permission": (lambda: admin.rebac_delete(grant, tenant_id="acme"),
                       nexus.NexusPermissionError),
        "tenant": (lambda: admin.suspend_tenant("acme"), nexus.TenantSuspendedError),
    }[what]
    before = _tenant_blobs(settings)
    pulled: list[int] = []
    with pytest.raises(error):
        carol.write("/tenants/acme/uploads/up.bin", _upload(pulled, revoke, clock))
    if transport == "local":
        assert pulled == [0, 1]  # stopped at the chunk that found the grant gone
    assert _tenant_blobs(settings) == before and _staging(settings) == []
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.stat("/tenants/acme/uploads/up.bin")


def test_a_long_upload_is_rechecked_before_it_commits(
        world: None, service: NexusService, admin: NexusClient, clock: FakeClock,
        settings: Settings) -> None:
    """The grant lapses while the last chunk arrives: the re-check at the end refuses,
    and the blob already stored is withdrawn."""
    carol = Principal("carol", "acme")
    grant = admin.rebac_create(("user", "carol"), "can_write",
                               ("file", "/tenants/acme/uploads"), tenant_id="acme")

    def chunks() -> Iterator[bytes]:
        yield b"1" * MIB
        clock.advance(1.5)  # a re-check on the next chunk: it passes
        yield b"2" * MIB
        admin.rebac_delete(grant, tenant_id="acme")
        yield b"3" * MIB

    before = _tenant_blobs(settings)
    with pytest.raises(nexus.NexusPermissionError):
        service.files.append(carol, "/tenants/acme/uploads/long.bin", chunks())
    assert _tenant_blobs(settings) == before and _staging(settings) == []
    digest = hashlib.sha256(b"1" * MIB + b"2" * MIB + b"3" * MIB).hexdigest()
    assert digest not in _tenant_blobs(settings)


# -- over a real socket ------------------------------------------------------------------


def test_a_truncated_download_raises_the_reason_over_a_real_server(
        tmp_path: Path, database_url: str | None) -> None:
    """``nexus serve``: the response is a 200 with its Content-Length when the share is
    revoked; the server cuts the body after at most 4 MiB more, and the SDK raises the
    error a new request gets, not an httpx exception."""
    server = NexusProcess(tmp_path / "data", database_url)
    try:
        admin = server.client(server.admin_key)
        for tenant in ("acme", "beta"):
            admin.create_tenant(tenant, plan="pro")
        alice = server.client(tenant_key(admin, "acme", "alice", owner=True))
        bob = server.client(tenant_key(admin, "beta", "bob", owner=True))
        size = 32 * MIB
        alice.write(SOURCE, iter(bytes([i]) * MIB for i in range(size // MIB)))
        share = alice.create_share(SOURCE, "beta")
        stream = bob.read_stream(ALIAS)
        received = len(next(stream))
        alice.revoke_share(share["share_id"])
        with pytest.raises((nexus.NexusFileNotFoundError, nexus.NexusPermissionError)):
            received = drain(stream, received)
        assert received < size
        log = server.output()
    finally:
        server.stop()
    # The server says in one line why the body ended; it is no crash (nexus.logs).
    assert "Traceback" not in log
    assert "response ended early: " in log
