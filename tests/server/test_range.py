"""``Range`` on ``GET /api/fs/content`` as RFC 9110 §14 has it: one satisfiable byte
range → 206; a range that names no byte (an empty file included) → 416 with
``Content-Range: bytes */size``; what the server does not understand is ignored."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from nexus.service import NexusService
from nexus.types import Principal

DATA = bytes(range(200))


@pytest.fixture
def get(app, service: NexusService):  # noqa: ANN001, ANN201 - a request helper
    key = service.keys.admin_create_key(Principal.local_admin(), "root", "range",
                                        is_admin=True)["api_key"]
    http = TestClient(app)
    auth = {"Authorization": f"Bearer {key}"}
    http.post("/api/nfs/mkdir", json={"params": {"path": "/tenants/acme"}}, headers=auth)
    assert http.put("/api/fs/content?path=/tenants/acme/f.bin", content=DATA,
                    headers=auth).status_code == 200
    assert http.put("/api/fs/content?path=/tenants/acme/empty", content=b"",
                    headers=auth).status_code == 200

    def fetch(range_header: str, path: str = "/tenants/acme/f.bin"):  # noqa: ANN202
        return http.get(f"/api/fs/content?path={path}", headers={**auth, "Range": range_header})
    return fetch


@pytest.mark.parametrize(("header", "window"), [
    ("bytes=10-19", (10, 20)),
    ("bytes=190-", (190, 200)),
    ("bytes=-5", (195, 200)),
    ("bytes=-500", (0, 200)),          # a suffix longer than the file is the whole file
    ("bytes=150-9999", (150, 200)),    # the last position is clamped to the end
    ("bytes=199-199", (199, 200)),
    ("Bytes= 3 - 4", (3, 5)),          # the unit is case-insensitive; optional whitespace
    ("bytes=0-" + "9" * 5000, (0, 200)),
])
def test_a_satisfiable_range_is_206(get, header: str, window: tuple[int, int]) -> None:  # noqa: ANN001
    reply = get(header)
    start, end = window
    assert reply.status_code == 206
    assert reply.content == DATA[start:end]
    assert reply.headers["content-range"] == f"bytes {start}-{end - 1}/200"
    assert reply.headers["content-length"] == str(end - start)


@pytest.mark.parametrize(("header", "path", "size"), [
    ("bytes=200-", "/tenants/acme/f.bin", 200),
    ("bytes=500-600", "/tenants/acme/f.bin", 200),
    ("bytes=" + "9" * 5000 + "-", "/tenants/acme/f.bin", 200),
    ("bytes=-0", "/tenants/acme/f.bin", 200),
    ("bytes=0-0", "/tenants/acme/empty", 0),
    ("bytes=0-", "/tenants/acme/empty", 0),
    ("bytes=-1", "/tenants/acme/empty", 0),
])
def test_an_unsatisfiable_range_is_416(get, header: str, path: str, size: int) -> None:  # noqa: ANN001
    reply = get(header, path)
    assert reply.status_code == 416
    assert reply.headers["content-range"] == f"bytes */{size}"
    assert reply.json()["error"]["data"]["code"] == "range_not_satisfiable"
    assert len(reply.json()["error"]["message"]) < 200  # a 5,000-digit header is not echoed


@pytest.mark.parametrize("header", [
    "lines=1-2", "bytes=5-2", "bytes=0-1,5-6", "bytes=", "bytes=-", "bytes=x-y", "bytes=1e3-",
])
def test_a_range_the_server_does_not_serve_is_ignored(get, header: str) -> None:  # noqa: ANN001
    reply = get(header)
    assert reply.status_code == 200
    assert reply.content == DATA
    assert "content-range" not in reply.headers
