"""Signed URLs: what they grant, and every way they must stop working.

A signed URL is the signer's key, narrowed to one path, one method and a while. The
attacks here: alter any part of it, use it for the other method, after it expires, after
its key is revoked or expires, after the signer loses the permission, while the tenant
is suspended, after the tenant is deleted and re-created under the same id, after the
tenant turns ``allow_public_sharing`` off; upload past ``max_size``, the quota or the
content type; walk out of the path with ``..``; read through CORS from an origin the
deployment did not list.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from starlette.testclient import TestClient

import nexus
from nexus.client import HTTPTransport, LocalTransport, NexusClient
from nexus.server import create_app
from nexus.service import NexusService, bootstrap
from nexus.settings import Settings
from nexus.types import Principal

ORIGIN = "http://app.example"
PUBLIC = "http://files.example"


@dataclass
class World:
    service: NexusService
    admin: NexusClient
    alice: NexusClient  # owner of /tenants/acme, over HTTP
    alice_key_id: str
    browser: TestClient  # no key at all

    def get(self, url: str, **kwargs: object):  # noqa: ANN201 - an httpx.Response
        return self.browser.get(_local(url), **kwargs)

    def put(self, url: str, **kwargs: object):  # noqa: ANN201
        return self.browser.put(_local(url), **kwargs)


def _local(url: str) -> str:
    # The URL as the TestClient sends it: its path and query, whatever host signed it.
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _code(response) -> str:  # noqa: ANN001
    return response.json()["error"]["data"]["code"]


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    service = bootstrap(dataclasses.replace(settings, cors_origins=(ORIGIN,)))
    app = create_app(service=service)
    admin, created = _acme_with_owner_alice(service)
    alice = NexusClient(HTTPTransport("http://testserver", created["api_key"],
                                      client=TestClient(app)))
    alice.write("/tenants/acme/report.csv", b"a,b\n1,2\n")
    yield World(service, admin, alice, created["key_id"], TestClient(app))
    service.close()


def _acme_with_owner_alice(service: NexusService) -> tuple[NexusClient, dict]:
    """The local administrator's client, and the key of alice, owner of free-plan acme."""
    admin = NexusClient(LocalTransport(service, Principal.local_admin(), owns_service=False))
    admin.create_tenant("acme", plan="free")
    created = admin.create_key("alice", tenant_id="acme")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"), tenant_id="acme")
    return admin, created


def _tamper(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return f"{parts.path}?{urlencode(query)}"


def test_get_serves_the_file_with_range_and_etag_and_no_key(world: World) -> None:
    url = world.alice.sign_url("/tenants/acme/report.csv", expires_in=600)
    assert url.startswith("http://testserver/api/signed/tenants/acme/report.csv?")
    whole = world.get(url)
    assert whole.status_code == 200 and whole.content == b"a,b\n1,2\n"
    etag = whole.headers["etag"]
    assert world.get(url, headers={"Range": "bytes=4-"}).content == b"1,2\n"
    assert world.get(url, headers={"Range": "bytes=4-"}).status_code == 206
    cached = world.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    world.alice.write("/tenants/acme/report.csv", b"new")
    assert world.get(url, headers={"If-None-Match": etag}).content == b"new"


def test_every_part_of_the_url_is_signed(world: World) -> None:
    world.alice.write("/tenants/acme/other.csv", b"other")
    url = world.alice.sign_url("/tenants/acme/report.csv", expires_in=600)
    upload = world.alice.sign_url("/tenants/acme/up.bin", "PUT", max_size=10)
    forged = [
        _tamper(url, expires=str(int(time.time()) + 10**6)),
        _tamper(url, sig="A" * 43),
        _tamper(url, sig=None),
        _tamper(url, key="ffffffffffff"),
        _tamper(url, method="PUT"),
        _tamper(url.replace("report.csv", "other.csv")),
        _tamper(url.replace("report.csv", "x/../other.csv")),
        _tamper(upload, max_size=None),
        _tamper(upload, max_size="1000000"),
    ]
    for bad in forged:
        method = "PUT" if "up.bin" in bad or "method=PUT" in bad else "GET"
        response = world.browser.request(method, bad, content=b"x" if method == "PUT" else None)
        assert response.status_code in (401, 403), bad
        assert b"other" not in response.content
    assert world.admin.read("/tenants/acme/other.csv") == b"other"
    assert not world.admin.exists("/tenants/acme/up.bin")


def test_dot_dot_cannot_leave_the_signed_path(world: World) -> None:
    world.admin.create_tenant("globex")
    world.admin.write("/tenants/globex/secret.txt", b"globex secret")
    url = world.alice.sign_url("/tenants/acme/report.csv")
    parts = urlsplit(url)
    for path in ("/api/signed/tenants/acme/../globex/secret.txt",
                 "/api/signed/tenants/acme/report.csv/../../globex/secret.txt",
                 "/api/signed/tenants/acme/%2e%2e/globex/secret.txt"):
        response = world.browser.get(f"{path}?{parts.query}")
        assert response.status_code in (400, 401, 404), path
        assert b"globex secret" not in response.content


def test_a_url_is_for_its_method_only(world: World) -> None:
    get = world.alice.sign_url("/tenants/acme/report.csv")
    put = world.alice.sign_url("/tenants/acme/report.csv", "PUT")
    assert world.put(get, content=b"overwritten").status_code == 403
    assert world.get(put).status_code == 403
    assert world.admin.read("/tenants/acme/report.csv") == b"a,b\n1,2\n"


def test_it_stops_at_its_expiry(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    url = world.alice.sign_url("/tenants/acme/report.csv", expires_in=60)
    now = time.time()
    monkeypatch.setattr(world.service.signing, "_clock", lambda: now + 59)
    assert world.get(url).status_code == 200
    monkeypatch.setattr(world.service.signing, "_clock", lambda: now + 61)
    expired = world.get(url)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_replay_after_the_key_is_revoked_or_expires(world: World) -> None:
    url = world.alice.sign_url("/tenants/acme/report.csv")
    assert world.get(url).status_code == 200
    world.admin.revoke_key(world.alice_key_id)
    assert world.get(url).status_code == 401
    created = world.admin.create_key("alice", "second", tenant_id="acme")
    second = nexus.connect(transport=LocalTransport(world.service, api_key=created["api_key"],
                                                    owns_service=False))
    with pytest.raises(nexus.InvalidArgumentError, match="public_url"):
        second.sign_url("/tenants/acme/report.csv")
    http = NexusClient(HTTPTransport("http://testserver", created["api_key"],
                                     client=world.browser))
    later = http.sign_url("/tenants/acme/report.csv")
    assert world.get(later).status_code == 200
    world.admin.update_key(created["key_id"], expires_at=time.time() - 1)
    assert world.get(later).status_code == 401


def test_it_stops_when_the_signer_loses_the_permission(world: World) -> None:
    url = world.alice.sign_url("/tenants/acme/report.csv")
    world.admin.rebac_delete(subject=("user", "alice"), relation="owner",
                             object=("file", "/tenants/acme"), tenant_id="acme")
    denied = world.get(url)
    assert denied.status_code == 403 and _code(denied) == "permission_denied"


def test_it_stops_while_the_tenant_is_suspended(world: World) -> None:
    url = world.alice.sign_url("/tenants/acme/report.csv")
    world.admin.suspend_tenant("acme", "unpaid")
    assert _code(world.get(url)) == "tenant_suspended"
    world.admin.reactivate_tenant("acme")
    assert world.get(url).status_code == 200


def test_a_re_created_tenant_does_not_honour_old_urls(world: World) -> None:
    url = world.alice.sign_url("/tenants/acme/report.csv")
    world.admin.delete_tenant("acme", confirm=True)
    world.admin.create_tenant("acme")
    world.admin.write("/tenants/acme/report.csv", b"the new acme's data")
    # Even a key of the same user id in the new tenant cannot revive it.
    world.admin.create_key("alice", tenant_id="acme")
    response = world.get(url)
    assert response.status_code == 401
    assert b"new acme" not in response.content


def test_allow_public_sharing_false_refuses_signing_and_use(world: World) -> None:
    url = world.alice.sign_url("/tenants/acme/report.csv")
    world.admin.update_tenant("acme", settings={"allow_public_sharing": False})
    with pytest.raises(nexus.NexusPermissionError, match="allow_public_sharing"):
        world.alice.sign_url("/tenants/acme/report.csv")
    assert world.get(url).status_code == 403
    world.admin.update_tenant("acme", settings={"allow_public_sharing": True})
    assert world.get(url).status_code == 200
    with pytest.raises(nexus.InvalidArgumentError, match="allow_public_sharing"):
        world.admin.update_tenant("acme", settings={"allow_public_sharing": "no"})


def test_signing_needs_the_permission_it_grants(world: World) -> None:
    world.admin.create_tenant("globex")
    world.admin.write("/tenants/globex/secret.txt", b"secret")
    with pytest.raises(nexus.NexusPermissionError):
        world.alice.sign_url("/tenants/globex/secret.txt")
    with pytest.raises(nexus.NexusPermissionError):
        world.alice.sign_url("/tenants/globex/planted.txt", "PUT")
    reader = world.admin.create_key("carol", tenant_id="acme")
    world.admin.rebac_create(("user", "carol"), "can_read", ("file", "/tenants/acme"),
                             tenant_id="acme")
    carol = NexusClient(HTTPTransport("http://testserver", reader["api_key"],
                                      client=world.browser))
    assert carol.sign_url("/tenants/acme/report.csv")
    with pytest.raises(nexus.NexusPermissionError):
        carol.sign_url("/tenants/acme/report.csv", "PUT")


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "DELETE"}, "GET or PUT"),
    ({"expires_in": 0}, "positive"),
    ({"expires_in": -5}, "positive"),
    ({"expires_in": 8 * 24 * 3600}, "at most"),
    ({"expires_in": float("inf")}, ""),
    ({"max_size": 10}, "sign a PUT"),
    ({"method": "PUT", "max_size": -1}, "max_size"),
    ({"method": "PUT", "content_type": "text/plain\n"}, "content_type"),
])
def test_bad_signing_requests_are_invalid_arguments(world: World, kwargs: dict,
                                                    message: str) -> None:
    with pytest.raises(nexus.InvalidArgumentError, match=message):
        world.alice.sign_url("/tenants/acme/report.csv", **kwargs)
    with pytest.raises(nexus.InvalidArgumentError, match="api_key"):
        world.admin.sign_url("/tenants/acme/report.csv")


def test_put_uploads_within_max_size_and_content_type(world: World) -> None:
    url = world.alice.sign_url("/tenants/acme/uploads/photo.png", "PUT", max_size=8,
                               content_type="image/png")
    done = world.put(url, content=b"PNG12345", headers={"Content-Type": "image/png"})
    assert done.status_code == 200 and done.json()["result"]["size"] == 8
    assert world.admin.read("/tenants/acme/uploads/photo.png") == b"PNG12345"
    too_big = world.put(url, content=b"PNG123456", headers={"Content-Type": "image/png"})
    assert too_big.status_code == 413 and _code(too_big) == "payload_too_large"
    chunked = world.put(url, content=iter([b"PNG1", b"2345", b"6"]),
                        headers={"Content-Type": "image/png"})
    assert chunked.status_code == 413
    wrong_type = world.put(url, content=b"x", headers={"Content-Type": "text/html"})
    assert wrong_type.status_code == 403
    assert world.admin.read("/tenants/acme/uploads/photo.png") == b"PNG12345"
    usage = world.admin.get_usage("acme")["usage"]
    assert usage["files"] == 2  # report.csv and photo.png: the refusals left nothing


def test_put_is_held_to_the_tenant_quota(world: World) -> None:
    world.admin.update_tenant("acme", limits={"max_storage_gb": 1e-6})  # ~1 KB
    url = world.alice.sign_url("/tenants/acme/big.bin", "PUT")
    response = world.put(url, content=b"x" * 5000)
    assert response.status_code == 413 and _code(response) == "quota_exceeded"
    assert not world.admin.exists("/tenants/acme/big.bin")


def test_every_use_is_audited_as_the_signer(world: World) -> None:
    url = world.alice.sign_url("/tenants/acme/report.csv")
    world.get(url)
    put = world.alice.sign_url("/tenants/acme/in.txt", "PUT")
    world.put(put, content=b"in")
    events = world.admin.audit_query("acme", limit=1000)["events"]
    signs = [e for e in events if e["action"] == "url.sign"]
    assert [e["target"] for e in signs] == ["/tenants/acme/report.csv", "/tenants/acme/in.txt"]
    used = [e for e in events if "via signed URL" in (e["detail"] or "")]
    assert {(e["action"], e["target"]) for e in used} >= {
        ("read", "/tenants/acme/report.csv"), ("write", "/tenants/acme/in.txt")}
    assert {e["user_id"] for e in used} == {"alice"}
    assert {e["key_id"] for e in used} == {world.alice_key_id}
    assert world.admin.audit_verify("acme")["ok"]


def test_cors_answers_listed_origins_on_signed_routes_only(world: World) -> None:
    url = _local(world.alice.sign_url("/tenants/acme/report.csv"))
    allowed = world.browser.get(url, headers={"Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "ETag" in allowed.headers["access-control-expose-headers"]
    other = world.browser.get(url, headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = world.browser.options(url, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    api = world.browser.post("/api/nfs/stat", json={"jsonrpc": "2.0", "id": 1,
                                                    "method": "stat", "params": {}},
                             headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in api.headers


def test_cors_is_off_by_default(settings: Settings) -> None:
    service = bootstrap(settings)
    try:
        app = create_app(service=service)
        key = _acme_with_owner_alice(service)[1]["api_key"]
        alice = NexusClient(HTTPTransport("http://testserver", key, client=TestClient(app)))
        alice.write("/tenants/acme/a.txt", b"a")
        url = _local(alice.sign_url("/tenants/acme/a.txt"))
        plain = TestClient(app)
        response = plain.get(url, headers={"Origin": ORIGIN})
        assert response.status_code == 200  # a link still works; a page cannot read it
        assert "access-control-allow-origin" not in response.headers
        preflight = plain.options(url, headers={"Origin": ORIGIN,
                                                "Access-Control-Request-Method": "PUT"})
        assert "access-control-allow-origin" not in preflight.headers
    finally:
        service.close()


def test_public_url_makes_embedded_clients_sign_absolute_urls(settings: Settings) -> None:
    service = bootstrap(dataclasses.replace(settings, public_url=PUBLIC))
    try:
        key = _acme_with_owner_alice(service)[1]["api_key"]
        alice = NexusClient(LocalTransport(service, api_key=key, owns_service=False))
        alice.write("/tenants/acme/a.txt", b"a")
        url = alice.sign_url("/tenants/acme/a.txt")
        assert url.startswith(f"{PUBLIC}/api/signed/tenants/acme/a.txt?")
        assert TestClient(create_app(service=service)).get(_local(url)).content == b"a"
    finally:
        service.close()
