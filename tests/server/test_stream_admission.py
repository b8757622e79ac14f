"""``nexus.server.admission``: the stream caps and body budgets on an injected clock, their
settings, and — over a real uvicorn socket in this process, so the count itself can be
read — every way a stream ends gives its slot back."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace

import anyio
import httpx
import pytest
import uvicorn
from starlette.requests import ClientDisconnect

import nexus
from nexus.errors import InvalidArgumentError, RateLimitedError, RequestTimeoutError
from nexus.server import create_app
from nexus.server.admission import (
    SYSTEM_BUCKET,
    BodyBudget,
    StreamAdmission,
    next_chunk,
    stream_bucket,
)
from nexus.service import bootstrap
from nexus.settings import Settings
from nexus.types import Principal
from tests.serving import free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- StreamAdmission -------------------------------------------------------------------

def test_a_tenant_over_its_cap_is_refused_with_retry_after() -> None:
    admission = StreamAdmission(per_tenant=2, total=10)
    slots = [admission.acquire("acme"), admission.acquire("acme")]
    with pytest.raises(RateLimitedError) as refused:
        admission.acquire("acme")
    assert refused.value.details == {"limit": "streams_per_tenant", "retry_after": 1}
    assert "acme" in refused.value.message
    assert admission.acquire("beta").bucket == "beta"  # another tenant is not affected
    slots[0].release()
    admission.acquire("acme")  # a released slot is free again
    assert admission.active("acme") == 2 and admission.active() == 3


def test_the_process_cap_counts_every_tenant_and_names_none() -> None:
    admission = StreamAdmission(per_tenant=2, total=3)
    admission.acquire("acme"), admission.acquire("acme"), admission.acquire("beta")
    with pytest.raises(RateLimitedError) as refused:
        admission.acquire("gamma")
    assert refused.value.details["limit"] == "streams_total"
    assert "acme" not in refused.value.message and "beta" not in refused.value.message


def test_releasing_twice_gives_back_one_slot_and_leaves_no_entry() -> None:
    admission = StreamAdmission(per_tenant=1, total=5)
    slot = admission.acquire("acme")
    slot.release()
    slot.release()
    assert admission.active() == 0 and admission.active("acme") == 0
    assert admission._open == {}  # no entry per tenant that ever streamed
    with admission.acquire("acme"):
        assert admission.active("acme") == 1
    assert admission.active() == 0


def test_a_refusal_takes_no_slot() -> None:
    admission = StreamAdmission(per_tenant=1, total=5)
    admission.acquire("acme")
    for _ in range(100):
        with pytest.raises(RateLimitedError):
            admission.acquire("acme")
    assert admission.active() == 1


def test_slots_are_counted_exactly_across_threads() -> None:
    admission = StreamAdmission(per_tenant=1000, total=1000)

    def churn() -> None:
        for _ in range(2000):
            admission.acquire("acme").release()

    threads = [threading.Thread(target=churn) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admission.active() == 0


def test_system_principals_share_one_bucket() -> None:
    assert stream_bucket(Principal("root", None, is_admin=True)) == SYSTEM_BUCKET
    assert stream_bucket(Principal("alice", "acme")) == "acme"
    with pytest.raises(InvalidArgumentError):
        StreamAdmission(per_tenant=0, total=1)


# --- BodyBudget ------------------------------------------------------------------------

def test_a_body_gets_the_idle_timeout_for_each_chunk() -> None:
    clock = FakeClock()
    budget = BodyBudget(idle=30, min_rate=0, clock=clock)
    for _ in range(100):  # with no rate rule, a byte every 29 s is never late
        assert budget.next_timeout() == 30
        clock.now += 29
        budget.record(1)
    error = budget.expired()
    assert error.details["limit"] == "body_idle_timeout" and error.http_status == 408


def test_a_trickling_body_runs_out_of_time_by_the_rate_rule() -> None:
    clock = FakeClock()
    budget = BodyBudget(idle=30, min_rate=1000, clock=clock)
    assert budget.next_timeout() == 30  # the grace: the idle rule binds first
    clock.now += 29
    budget.record(1)
    # 1 byte in 29 s: the deadline is 30 s + 1/1000 s after the start.
    assert budget.next_timeout() == pytest.approx(1.001)
    clock.now += 1.001
    with pytest.raises(RequestTimeoutError) as late:
        budget.next_timeout()
    assert late.value.details == {"limit": "body_min_rate", "received": 1}
    assert "1000 bytes per second" in late.value.message


def test_a_body_at_the_minimum_rate_keeps_going() -> None:
    clock = FakeClock()
    budget = BodyBudget(idle=30, min_rate=1000, clock=clock)
    for _ in range(10_000):  # 1,000 bytes per second for almost three hours
        clock.now += 1
        budget.record(1000)
        assert budget.next_timeout() == 30  # the idle rule binds: well ahead of the rate
    # A burst ahead of the rate earns no more than the idle timeout for the next chunk.
    budget.record(10_000_000)
    assert budget.next_timeout() == 30


def test_the_time_starts_when_the_server_starts_reading() -> None:
    clock = FakeClock()
    budget = BodyBudget(idle=30, min_rate=1000, clock=clock)
    clock.now += 600  # the request waited for a worker thread
    assert budget.next_timeout() == 30


def test_a_fast_start_then_a_stall_ends_by_the_idle_rule() -> None:
    clock = FakeClock()
    budget = BodyBudget(idle=30, min_rate=1000, clock=clock)
    budget.record(1_000_000)
    assert budget.next_timeout() == 30
    assert budget.expired().details["limit"] == "body_idle_timeout"


def _run(coro: Callable[[], object]) -> object:
    return anyio.run(coro)  # type: ignore[arg-type]


async def _chunks(*items: bytes | BaseException) -> AsyncIterator[bytes]:
    for item in items:
        if isinstance(item, BaseException):
            raise item
        yield item


def test_next_chunk_counts_bytes_and_passes_the_end_through() -> None:
    budget = BodyBudget(idle=30, min_rate=0)

    async def read_all() -> list[bytes]:
        stream = _chunks(b"ab", b"cde").__aiter__()
        got = []
        while True:
            try:
                got.append(await next_chunk(stream, budget))
            except StopAsyncIteration:
                return got

    assert _run(read_all) == [b"ab", b"cde"]
    assert budget.received == 5


def test_next_chunk_refuses_at_once_when_no_time_is_left() -> None:
    clock = FakeClock()
    budget = BodyBudget(idle=30, min_rate=1000, clock=clock)
    budget.next_timeout()  # reading started...
    clock.now += 31  # ...and no byte came within the idle timeout
    awaited = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal awaited
        awaited = True
        yield b"never"

    async def read() -> None:
        await next_chunk(body().__aiter__(), budget)

    with pytest.raises(RequestTimeoutError):
        _run(read)
    assert not awaited


def test_a_client_disconnect_is_a_client_error_not_a_500() -> None:
    budget = BodyBudget(idle=30, min_rate=0)

    async def read() -> None:
        await next_chunk(_chunks(b"a", ClientDisconnect()).__aiter__(), budget)
        await next_chunk(_chunks(ClientDisconnect()).__aiter__(), budget)

    with pytest.raises(InvalidArgumentError) as gone:
        _run(read)
    assert gone.value.http_status == 400 and "closed the connection" in gone.value.message


# --- Settings --------------------------------------------------------------------------

def test_serving_settings_come_from_flags_then_environment_then_defaults() -> None:
    defaults = Settings.load({}, environ={})
    assert (defaults.body_idle_timeout, defaults.body_min_rate, defaults.streams_per_tenant,
            defaults.streams_total, defaults.worker_threads) == (30.0, 1024.0, 8, 32, 40)
    env = {"NEXUS_BODY_IDLE_TIMEOUT": "5", "NEXUS_BODY_MIN_RATE": "0",
           "NEXUS_STREAMS_PER_TENANT": "3", "NEXUS_STREAMS_TOTAL": "50",
           "NEXUS_WORKER_THREADS": "64"}
    loaded = Settings.load({"streams_per_tenant": 4}, environ=env)
    assert (loaded.body_idle_timeout, loaded.body_min_rate, loaded.streams_per_tenant,
            loaded.streams_total, loaded.worker_threads) == (5.0, 0.0, 4, 50, 64)


@pytest.mark.parametrize("environ, message", [
    ({"NEXUS_STREAMS_TOTAL": "40"}, "below the number of worker threads"),
    ({"NEXUS_WORKER_THREADS": "8"}, "below the number of worker threads"),
    ({"NEXUS_STREAMS_PER_TENANT": "0"}, "at least 1"),
    ({"NEXUS_BODY_IDLE_TIMEOUT": "0"}, "more than 0"),
    ({"NEXUS_BODY_MIN_RATE": "-1"}, "0 or more"),
    ({"NEXUS_STREAMS_TOTAL": "many"}, "NEXUS_STREAMS_TOTAL must be a number"),
])
def test_unworkable_serving_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Settings.load({}, environ=environ)


# --- every exit path releases its slot (real socket, this process) ---------------------

class InProcessServer:
    """``create_app`` under uvicorn on a loopback port, in a thread of the test process,
    so a test can read ``app.state.admission`` while real clients connect."""

    def __init__(self, settings: Settings) -> None:
        self.service = bootstrap(settings)
        self.app = create_app(settings, service=self.service)
        self.admission: StreamAdmission = self.app.state.admission
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1",
                                                     port=self.port, log_config=None,
                                                     access_log=False))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert time.monotonic() < deadline and self._thread.is_alive(), "no server"
            time.sleep(0.01)
        admin = Principal.local_admin()
        self.keys: dict[str, str] = {}
        for tenant in ("acme", "beta"):
            self.service.tenants.create_tenant(admin, tenant, plan="pro")
            self.keys[tenant] = self._key(tenant, "owner")
            self.service.rebac.rebac_create(admin, ("user", "owner"), "owner",
                                            ("file", f"/tenants/{tenant}"), tenant_id=tenant)
        self.keys["reader"] = self._key("acme", "reader")  # no grant: may not write

    def _key(self, tenant: str, user: str) -> str:
        return str(self.service.keys.admin_create_key(
            Principal.local_admin(), user, user, tenant_id=tenant)["api_key"])

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def wait_active(self, expected: int, bucket: str | None = None) -> None:
        # A download releases after its last byte is sent, so just after the client has
        # it: poll (bounded) rather than sleep.
        deadline = time.monotonic() + 10
        while self.admission.active(bucket) != expected:
            assert time.monotonic() < deadline, \
                f"{self.admission.active(bucket)} streams open, expected {expected}"
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self.service.close()


@pytest.fixture
def live(settings: Settings) -> Iterator[InProcessServer]:
    srv = InProcessServer(replace(settings, body_idle_timeout=1.0, body_min_rate=0,
                                  streams_per_tenant=2, streams_total=3, worker_threads=8))
    yield srv
    srv.stop()


def _open_upload(srv: InProcessServer, who: str, path: str, *, sent: bytes = b"x",
                 method: str = "PUT", target: str | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    target = target or f"/api/fs/content?path={path}"
    sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {srv.keys[who]}\r\n"
                 f"Content-Length: 1000000\r\n\r\n".encode() + sent)
    return sock


def _status(sock: socket.socket) -> int:
    sock.settimeout(30)
    return int(sock.recv(65536).split(b" ", 2)[1])


def test_success_refusal_and_denial_leave_no_slot(live: InProcessServer) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.put("/api/fs/content", params={"path": "/tenants/acme/a.bin"},
                     content=b"a" * 500_000, headers=live.auth("acme"))
        assert r.status_code == 200, r.text
        r = http.get("/api/fs/content", params={"path": "/tenants/acme/a.bin"},
                     headers=live.auth("acme"))
        assert r.status_code == 200 and len(r.content) == 500_000
        # Admitted, then refused inside the service: permission, then a missing file.
        r = http.put("/api/fs/content", params={"path": "/tenants/acme/b.bin"},
                     content=b"b", headers=live.auth("reader"))
        assert r.status_code == 403, r.text
        r = http.get("/api/fs/content", params={"path": "/tenants/acme/missing"},
                     headers=live.auth("acme"))
        assert r.status_code == 404, r.text
        r = http.get("/api/fs/content", params={"path": "/tenants/acme/a.bin"},
                     headers={"Range": "bytes=999999999-"} | live.auth("acme"))
        assert r.status_code == 416, r.text
        r = http.put("/api/fs/content", params={"path": "/tenants/acme/c.bin"},
                     content=b"c", headers={"Authorization": "Bearer nx_wrong"})
        assert r.status_code == 401 and r.headers["connection"] == "close"
        body = b'{"params": {"path": "/tenants/acme"}}' + b" " * 100_000  # read after auth
        r = http.post("/api/nfs/list", content=body, headers=live.auth("acme"))
        assert r.status_code == 200, r.text
    live.wait_active(0)


def test_timeouts_and_disconnects_give_slots_back(live: InProcessServer) -> None:
    # The cap is reached by stalled uploads, and the next one is refused...
    held = [_open_upload(live, "acme", f"/tenants/acme/s{i}.bin") for i in range(2)]
    live.wait_active(2, "acme")
    refused = _open_upload(live, "acme", "/tenants/acme/s2.bin")
    assert _status(refused) == 429
    # ...until the stalled ones time out (408) and free their slots.
    assert [_status(sock) for sock in held] == [408, 408]
    live.wait_active(0)
    # A client that hangs up mid-upload gives its slot back as well.
    gone = _open_upload(live, "acme", "/tenants/acme/gone.bin", sent=b"z" * 100_000)
    live.wait_active(1)
    gone.close()
    live.wait_active(0)
    # A large JSON-RPC body holds a slot while it arrives; a hang-up frees it.
    rpc = _open_upload(live, "acme", "", method="POST", target="/api/nfs/list",
                       sent=b'{"params": ')
    live.wait_active(1)
    rpc.close()
    live.wait_active(0)
    for sock in (*held, refused):
        sock.close()


def test_a_download_cut_short_gives_its_slot_back(live: InProcessServer) -> None:
    size = 32 << 20  # more than the socket buffers hold: the server is mid-send
    live.service.files.write(Principal.local_admin(), "/tenants/acme/big.bin",
                             iter([b"d" * (1 << 20)] * 32))
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /api/fs/content?path=/tenants/acme/big.bin HTTP/1.1\r\nHost: x\r\n"
                 + f"Authorization: Bearer {live.keys['acme']}\r\n\r\n".encode())
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    live.wait_active(1, "acme")
    # The slot is held while the client does not read: a second download is refused.
    with httpx.Client(base_url=live.url, timeout=30) as http:
        second = http.get("/api/fs/content", params={"path": "/tenants/acme/big.bin"},
                          headers=live.auth("acme"))
        assert second.status_code == 200 and len(second.content) == size  # 2 per tenant
        sock2 = socket.create_connection(("127.0.0.1", live.port), timeout=30)
        sock2.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock2.sendall(b"GET /api/fs/content?path=/tenants/acme/big.bin HTTP/1.1\r\n"
                      + f"Host: x\r\nAuthorization: Bearer {live.keys['acme']}\r\n\r\n".encode())
        assert sock2.recv(4096).startswith(b"HTTP/1.1 200")
        live.wait_active(2, "acme")
        third = http.get("/api/fs/content", params={"path": "/tenants/acme/big.bin"},
                         headers=live.auth("acme"))
        assert third.status_code == 429 and third.headers["retry-after"] == "1"
    sock.close()
    sock2.close()
    live.wait_active(0)


def test_the_process_cap_holds_across_tenants(live: InProcessServer) -> None:
    held = [_open_upload(live, "acme", f"/tenants/acme/s{i}.bin") for i in range(2)]
    held.append(_open_upload(live, "beta", "/tenants/beta/s.bin"))
    live.wait_active(3)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.put("/api/fs/content", params={"path": "/tenants/beta/t.bin"},
                     content=b"t", headers=live.auth("beta"))
        assert r.status_code == 429, r.text
        assert r.json()["error"]["data"]["details"]["limit"] == "streams_total"
        assert http.get("/health").status_code == 200  # never a stream
        r = http.post("/api/nfs/stat", json={"params": {"path": "/tenants/beta"}},
                      headers=live.auth("beta"))
        assert r.status_code == 200, r.text  # small calls are not streams either
    for sock in held:
        sock.close()
    live.wait_active(0)
    # The client library sees the refusal as the class it already knows.
    live.admission.acquire("acme"), live.admission.acquire("acme")
    client = nexus.connect(config={"url": live.url, "api_key": live.keys["acme"]})
    with pytest.raises(nexus.RateLimitedError):
        client.write("/tenants/acme/x.bin", iter([b"x"]))
    client.close()
