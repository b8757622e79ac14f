"""Fair serving (issue 14, item 2) over a real ``nexus serve``: an anonymous caller costs
no body buffer; deep JSON is a 400 before or after authentication; one tenant's storm of
trickling uploads takes its own stream slots only (the rest are 429, the held ones end
with 408) while another tenant, the administrator and ``/health`` are served; a stalled
upload leaves no byte behind."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import nexus
from tests.run_summary import Line, provider
from tests.serving import NexusProcess, tenant_key


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[NexusProcess]:
    srv = NexusProcess(tmp_path / "data", database_url)
    yield srv
    srv.stop()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _anonymous_big_body(port: int, size: int) -> bytes:
    # A raw socket: the attacker declares 60 MiB and would send it all if read.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /api/nfs/list HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     + f"Content-Length: {size}\r\n\r\n".encode())
        chunk = b" " * (1 << 20)
        sent = 0
        try:
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: exactly what we want
        sock.settimeout(10)
        return sock.recv(4096)


def test_anonymous_large_bodies_are_not_buffered(server: NexusProcess) -> None:
    pid = server.proc.pid
    before = _rss_kib(pid)
    for _ in range(8):
        answer = _anonymous_big_body(server.port, 60 * 1024 * 1024)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    growth_mb = (_rss_kib(pid) - before) / 1024
    assert growth_mb < 100, f"server RSS grew by {growth_mb:.0f} MB"


def test_anonymous_chunked_body_is_refused_unread(server: NexusProcess) -> None:
    # No Content-Length: the size is unknown, so the key is checked before a byte is read.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/nfs/list HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer nx_garbage\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(64):  # 64 MiB offered; the answer comes after the first ones
                sock.sendall(b"100000\r\n" + b" " * 0x100000 + b"\r\n")
        except OSError:
            pass
        assert sock.recv(4096).startswith(b"HTTP/1.1 401")


def test_small_bodies_still_need_a_key(server: NexusProcess) -> None:
    # Read before the key check (one thread hop), but answered exactly as a large one.
    r = httpx.post(server.url + "/api/nfs/list", json={"params": {"path": "/"}}, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["data"]["code"] == "unauthenticated"
    r = httpx.post(server.url + "/api/nfs/open_read", json={"params": {"path": "/x"}},
                   timeout=30)
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("authenticated", [False, True])
def test_deep_json_is_a_400(server: NexusProcess, authenticated: bool) -> None:
    body = b'{"params": {"path": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    headers = {"Content-Type": "application/json"}
    if authenticated:
        headers["Authorization"] = f"Bearer {server.admin_key}"
    r = httpx.post(server.url + "/api/nfs/list", content=body, headers=headers, timeout=30)
    if authenticated:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["data"]["code"] == "invalid_argument", r.text
    else:
        assert r.status_code == 401, r.text


def test_moderately_deep_json_is_a_400(server: NexusProcess) -> None:
    body = b'{"params": {"path": ' + b"[" * 500 + b"]" * 500 + b"}}"
    r = httpx.post(server.url + "/api/nfs/list", content=body, timeout=30,
                   headers={"Authorization": f"Bearer {server.admin_key}"})
    assert r.status_code == 400, r.text


# --- Slow-upload storm: stream caps and body timeouts (issue 14, item 2) ---------------

#: Figures of the storm runs, printed in the run summary ("fair serving").
FIGURES: list[str] = []


@provider
def _figures(_config: pytest.Config) -> list[Line]:
    return [Line("fair serving", text) for text in FIGURES]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict
    seconds: float  # from the first byte sent to the answer

    @property
    def code(self) -> str:
        return str(self.body.get("error", {}).get("data", {}).get("code"))

    @property
    def limit(self) -> str | None:
        return self.body.get("error", {}).get("data", {}).get("details", {}).get("limit")


def _parse(raw: bytes, seconds: float) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, json.loads(body or b"{}"), seconds)


def _read_answer(sock: socket.socket, started: float, limit: float = 60) -> Answer:
    sock.settimeout(limit)
    raw = b""
    while True:  # the server closes the connection after a refused or timed-out body
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        raw += data
    assert raw, "the server closed the connection without an answer"
    return _parse(raw, time.monotonic() - started)


def _raw_request(port: int, method: str, target: str, key: str, length: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode())
    return sock


def _trickle(port: int, key: str, path: str, every: float = 0.25) -> Answer:
    """A PUT that declares 1 MiB and sends one byte every ``every`` seconds until the
    server answers (the attack of issue 14)."""
    started = time.monotonic()
    with _raw_request(port, "PUT", f"/api/fs/content?path={path}", key, 1 << 20) as sock:
        while True:
            readable, _, _ = select.select([sock], [], [], every)
            if readable:
                return _read_answer(sock, started)
            try:
                sock.sendall(b"x")
            except OSError:
                return _read_answer(sock, started)
            assert time.monotonic() - started < 60, "a trickling upload was never ended"


def _timed(fn: Callable[[], httpx.Response], latencies: list[float]) -> httpx.Response:
    started = time.perf_counter()
    response = fn()
    latencies.append(time.perf_counter() - started)
    return response


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


#: The storm server: 8 streams per tenant, 16 in all, of 24 threads; a body must bring
#: a byte every 6 s and, after those 6 s, 64 bytes per second on average. The tricklers
#: send 4 bytes per second, so each admitted one ends after about 6.4 s.
STORM_ARGS = ("--log-level", "warning", "--streams-per-tenant", "8", "--streams-total", "16",
              "--worker-threads", "24", "--body-idle-timeout", "6", "--body-min-rate", "64")


@pytest.fixture
def storm_server(tmp_path: Path, database_url: str | None) -> Iterator[NexusProcess]:
    srv = NexusProcess(tmp_path / "data", database_url, extra_args=STORM_ARGS)
    yield srv
    srv.stop()


def test_slow_upload_storm_leaves_other_tenants_and_health_served(
        storm_server: NexusProcess, backend: str) -> None:
    srv = storm_server
    admin = srv.client()
    # "pro" (burst 200): the storm's 45 requests stay inside the plan's rate limit, so
    # every refusal below is the stream cap's.
    admin.create_tenant("storm", plan="pro")
    admin.create_tenant("calm", plan="pro")
    storm_key = tenant_key(admin, "storm", "mallory", owner=True)
    calm_key = tenant_key(admin, "calm", "carol", owner=True)
    calm = {"Authorization": f"Bearer {calm_key}"}
    quiet_reads: list[float] = []
    quiet_health: list[float] = []
    with httpx.Client(base_url=srv.url, timeout=30) as http:
        assert http.put("/api/fs/content", params={"path": "/tenants/calm/a.txt"},
                        content=b"calm data", headers=calm).status_code == 200
        for _ in range(40):  # the floor, measured the same way before the storm
            _timed(lambda: http.get("/api/fs/content", params={"path": "/tenants/calm/a.txt"},
                                    headers=calm), quiet_reads)
            _timed(lambda: http.get("/health"), quiet_health)

    answers: list[Answer] = []
    with ThreadPoolExecutor(max_workers=45) as pool:
        storm = [pool.submit(_trickle, srv.port, storm_key, f"/tenants/storm/slow-{i}.bin")
                 for i in range(45)]
        # The streams over the cap are refused at once; the 8 admitted ones keep
        # trickling while the other tenant, the administrator and /health are served.
        refused = 0
        deadline = time.monotonic() + 30
        while refused < 37 and time.monotonic() < deadline:
            refused = sum(1 for f in storm if f.done())
            time.sleep(0.05)
        assert refused == 37, f"{refused} of the storm's 45 uploads answered early"

        reads: list[float] = []
        health: list[float] = []
        # Each call fails the test if it stalls past 5 s (the held streams last ~6.4 s).
        with httpx.Client(base_url=srv.url, timeout=5) as http:
            for i in range(40):
                r = _timed(lambda: http.get("/api/fs/content",
                                            params={"path": "/tenants/calm/a.txt"},
                                            headers=calm), reads)
                assert r.status_code == 200 and r.content == b"calm data", r.text
                r = _timed(lambda: http.get("/health"), health)
                assert r.status_code == 200 and r.json()["status"] == "ok", r.text
                if i % 10 == 0:
                    r = http.post("/api/nfs/stat", json={"params": {"path": "/tenants/calm/a.txt"}},
                                  headers=calm)
                    assert r.status_code == 200, r.text
            r = http.put("/api/fs/content", params={"path": "/tenants/calm/b.txt"},
                         content=b"uploaded during the storm", headers=calm)
            assert r.status_code == 200, r.text  # the other tenant's own streams are free
            r = http.post("/api/nfs/list_tenants", json={"params": {}},
                          headers={"Authorization": f"Bearer {srv.admin_key}"})
            assert r.status_code == 200, r.text
        held_during_calls = sum(1 for f in storm if not f.done())
        answers = [f.result() for f in storm]

    assert held_during_calls == 8, "the calls did not overlap the held streams"
    too_many = [a for a in answers if a.status == 429]
    timed_out = [a for a in answers if a.status == 408]
    assert len(too_many) == 37 and len(timed_out) == 8, sorted(a.status for a in answers)
    for a in too_many:
        assert a.code == "rate_limited" and a.limit == "streams_per_tenant", a.body
        assert a.headers["retry-after"] == "1" and a.headers["connection"] == "close"
    for a in timed_out:
        assert a.code == "request_timeout" and a.limit == "body_min_rate", a.body
        assert a.seconds < 30, f"a trickling upload lasted {a.seconds:.1f} s"
    # Every slot came back: the storm's tenant streams again, 8 at once.
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(
            lambda i: httpx.put(f"{srv.url}/api/fs/content",
                                params={"path": f"/tenants/storm/after-{i}.bin"},
                                content=b"x" * 1000, timeout=30,
                                headers={"Authorization": f"Bearer {storm_key}"}),
            range(8)))
    assert [r.status_code for r in results] == [200] * 8, [r.text for r in results]
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.stat("/tenants/storm/slow-0.bin")
    FIGURES.append(
        f"{backend}: storm of 45 trickling uploads (8 held, 37 refused with 429, held ones "
        f"ended with 408 after {min(a.seconds for a in timed_out):.1f}–"
        f"{max(a.seconds for a in timed_out):.1f} s); other tenant's reads p99 "
        f"{_p99(reads) * 1000:.0f} ms (max {max(reads) * 1000:.0f} ms, n={len(reads)}), "
        f"/health p99 {_p99(health) * 1000:.0f} ms (n={len(health)}) during the storm; "
        f"before it: reads p99 {_p99(quiet_reads) * 1000:.0f} ms, /health p99 "
        f"{_p99(quiet_health) * 1000:.0f} ms")


#: Short timeouts for the tests that wait for one: 1.5 s idle, no rate rule.
QUICK_ARGS = ("--log-level", "warning", "--body-idle-timeout", "1.5", "--body-min-rate", "0")


@pytest.fixture
def quick_server(tmp_path: Path, database_url: str | None) -> Iterator[NexusProcess]:
    srv = NexusProcess(tmp_path / "data", database_url, extra_args=QUICK_ARGS)
    yield srv
    srv.stop()


def _stored(admin: nexus.NexusClient) -> dict:
    # What the tenant is charged for (its api_calls count the test's own calls).
    usage = admin.get_usage("acme")["usage"]
    return {name: value for name, value in usage.items() if name != "api_calls"}


def _blob_files(data_dir: Path) -> set[Path]:
    return {p for p in (data_dir / "blobs").rglob("*") if p.is_file()}


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_a_stalled_upload_is_a_408_and_leaves_no_bytes(quick_server: NexusProcess,
                                                       method: str) -> None:
    srv = quick_server
    admin = srv.client()
    admin.create_tenant("acme")
    key = tenant_key(admin, "acme", "alice", owner=True)
    if method == "POST":  # an append to an existing file: the file stays as it was
        admin.write("/tenants/acme/big.bin", b"before")
    before, usage = _blob_files(srv.data_dir), _stored(admin)
    started = time.monotonic()
    with _raw_request(srv.port, method, "/api/fs/content?path=/tenants/acme/big.bin", key,
                      1 << 20) as sock:
        sock.sendall(b"y" * 300_000)  # past any inline size: staged in the blob store
        answer = _read_answer(sock, started)
    assert answer.status == 408, answer.body
    assert answer.code == "request_timeout" and answer.limit == "body_idle_timeout"
    assert answer.body["error"]["data"]["details"]["received"] == 300_000
    assert answer.seconds < 30
    assert _blob_files(srv.data_dir) == before  # nothing staged or stored remains
    if method == "PUT":
        with pytest.raises(nexus.NexusFileNotFoundError):
            admin.stat("/tenants/acme/big.bin")
    else:
        assert admin.read("/tenants/acme/big.bin") == b"before"
    assert _stored(admin) == usage


@pytest.mark.parametrize("declared", [100, 200_000])  # read before / after the key check
def test_a_stalled_rpc_body_is_a_408(quick_server: NexusProcess, declared: int) -> None:
    started = time.monotonic()
    with _raw_request(quick_server.port, "POST", "/api/nfs/list", quick_server.admin_key,
                      declared) as sock:
        sock.sendall(b'{"params": ')
        answer = _read_answer(sock, started)
    assert answer.status == 408 and answer.code == "request_timeout", answer.body
    assert answer.headers["connection"] == "close"
