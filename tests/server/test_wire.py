"""The HTTP surface: malformed input is a 4xx with a clear message, never a 500."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

import nexus
from nexus.errors import NexusError, error_class_for_code, error_from_payload, error_payload
from nexus.types import Principal


@pytest.fixture
def http(app) -> TestClient:  # noqa: ANN001
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def admin_key(service) -> str:  # noqa: ANN001
    return str(service.keys.admin_create_key(Principal.local_admin(), "root", "t",
                                             is_admin=True)["api_key"])


def _rpc(http: TestClient, key: str, method: str, body: object) -> tuple[int, dict]:
    response = http.post(f"/api/nfs/{method}", json=body,
                         headers={"Authorization": f"Bearer {key}"})
    return response.status_code, response.json()


def test_health(http: TestClient) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": nexus.__version__,
                               "mode": "multi-tenant"}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "invalid_argument"),
    (b"[1, 2]", 400, "invalid_argument"),
    (b'{"params": [1]}', 400, "invalid_argument"),
])
def test_malformed_envelopes(http: TestClient, admin_key: str, body: bytes, status: int,
                             code: str) -> None:
    response = http.post("/api/nfs/read", content=body,
                         headers={"Authorization": f"Bearer {admin_key}"})
    assert response.status_code == status
    assert response.json()["error"]["data"]["code"] == code


@pytest.mark.parametrize("method, params, code", [
    ("no_such_method", {}, "invalid_argument"),
    ("read", {"path": 123}, "invalid_path"),
    ("read", {"path": "/tenants/acme/x", "nonsense": True}, "invalid_argument"),
    ("write", {"path": "/tenants/acme/x", "data": 5}, "invalid_argument"),
    ("write", {"path": "/tenants/acme/x", "data": {"__bytes__": "!!"}}, "invalid_argument"),
    ("list", {"path": "/tenants", "limit": "ten"}, "invalid_argument"),
    ("list", {"path": "/tenants", "cursor": 7}, "invalid_argument"),
    ("rebac_create", {"subject": 1, "relation": "owner", "object": ["file", "/tenants/a"]},
     "invalid_argument"),
    ("mkdir", {"path": "/tenants/../etc"}, "invalid_path"),
    ("read", {"path": "/tenants/acme/missing"}, "not_found"),
])
def test_bad_parameters_are_4xx_with_a_stable_code(http: TestClient, admin_key: str,
                                                   method: str, params: dict,
                                                   code: str) -> None:
    http.post("/api/nfs/mkdir", json={"params": {"path": "/tenants/acme"}},
              headers={"Authorization": f"Bearer {admin_key}"})
    status, body = _rpc(http, admin_key, method, {"jsonrpc": "2.0", "id": 7,
                                                   "params": params})
    assert 400 <= status < 500, body
    assert body["error"]["data"]["code"] == code
    assert "Traceback" not in str(body)


def test_oversized_body_is_413(http: TestClient, admin_key: str) -> None:
    response = http.post("/api/nfs/write", content=b"x",
                         headers={"Authorization": f"Bearer {admin_key}",
                                  "Content-Length": str(65 * 1024 * 1024)})
    assert response.status_code == 413


def test_authentication_errors(http: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = http.post("/api/nfs/list", json={"params": {"path": "/"}}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["data"]["code"] == "unauthenticated"


def test_content_endpoints_range_and_etag(http: TestClient, admin_key: str) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    _rpc(http, admin_key, "mkdir", {"params": {"path": "/tenants/acme"}})
    put = http.put("/api/fs/content?path=/tenants/acme/f.bin", content=bytes(range(200)),
                   headers=auth)
    assert put.status_code == 200
    etag = put.json()["result"]["etag"]
    got = http.get("/api/fs/content?path=/tenants/acme/f.bin", headers=auth)
    assert got.content == bytes(range(200)) and got.headers["etag"] == f'"{etag}"'
    part = http.get("/api/fs/content?path=/tenants/acme/f.bin",
                    headers={**auth, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == bytes(range(10, 20))
    assert part.headers["content-range"] == "bytes 10-19/200"
    suffix = http.get("/api/fs/content?path=/tenants/acme/f.bin",
                      headers={**auth, "Range": "bytes=-5"})
    assert suffix.content == bytes(range(195, 200))
    other_unit = http.get("/api/fs/content?path=/tenants/acme/f.bin",
                          headers={**auth, "Range": "lines=1-2"})
    assert other_unit.status_code == 200 and other_unit.content == bytes(range(200))
    stale = http.put("/api/fs/content?path=/tenants/acme/f.bin", content=b"new",
                     headers={**auth, "If-Match": '"0000"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["data"]["code"] == "conflict"
    create_only = http.put("/api/fs/content?path=/tenants/acme/f.bin", content=b"new",
                           headers={**auth, "If-None-Match": "*"})
    assert create_only.status_code == 409
    missing = http.get("/api/fs/content", headers=auth)
    assert missing.status_code == 400


def test_unicode_digits_and_huge_offsets_are_not_server_errors(http: TestClient,
                                                               admin_key: str) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` fails; an offset past 2**63 overflows a
    seek. Both used to answer 500."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    _rpc(http, admin_key, "mkdir", {"params": {"path": "/tenants/acme"}})
    http.put("/api/fs/content?path=/tenants/acme/f.bin", content=b"0123456789", headers=auth)
    bad = http.get("/api/fs/content?path=/tenants/acme/f.bin&offset=%C2%B2", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["data"]["code"] == "invalid_argument"
    far = http.get(f"/api/fs/content?path=/tenants/acme/f.bin&offset={2**64}", headers=auth)
    assert far.status_code == 200 and far.content == b""
    status, body = _rpc(http, admin_key, "read", {"params": {
        "path": "/tenants/acme/f.bin", "offset": 2**64, "length": 2**70}})
    assert status == 200 and body["result"] == {"__bytes__": ""}
    status, body = _rpc(http, admin_key, "read", {"params": {
        "path": "/tenants/acme/f.bin", "offset": 8, "length": 2**70}})
    assert status == 200 and body["result"] == {"__bytes__": "ODk="}  # b"89"
    status, body = _rpc(http, admin_key, "rebac_check", {"params": {
        "subject": ["user", "a"], "permission": "can_read",
        "object": ["file", "/tenants/acme"], "at_least": "acme@\u00b2"}})
    assert status == 400 and body["error"]["data"]["code"] == "invalid_argument", body


def test_openapi_is_served(http: TestClient) -> None:
    spec = http.get("/openapi.json").json()
    assert "/api/nfs/{method}" in spec["paths"] and "/health" in spec["paths"]


def test_every_error_class_round_trips() -> None:
    classes = [c for c in vars(nexus.errors).values()
               if isinstance(c, type) and issubclass(c, NexusError)]
    assert len(classes) >= 15
    for cls in classes:
        exc = cls.__new__(cls)
        NexusError.__init__(exc, f"{cls.__name__} happened", path="/x")
        decoded = error_from_payload(error_payload(exc))
        assert type(decoded) is cls and error_class_for_code(cls.code) is cls
        assert decoded.message == f"{cls.__name__} happened"
        assert decoded.details["path"] == "/x"
