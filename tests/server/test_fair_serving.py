"""Fair serving (issue 14, item 2): an anonymous caller costs no body buffer, and deep
JSON is a 400 before or after authentication — over a real ``nexus serve``."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving import NexusProcess


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
