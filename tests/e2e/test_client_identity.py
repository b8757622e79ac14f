"""Who the client is, as the audit log records it: a client cannot choose its address
(``X-Forwarded-For`` is believed only from ``--forwarded-allow-ips``) nor put an arbitrary
string in the request id."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.serving import NexusProcess


@pytest.fixture(scope="module", params=["no-proxy", "trusted-proxy"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NexusProcess, bool]]:
    trusted = request.param == "trusted-proxy"
    extra = ("--forwarded-allow-ips", "127.0.0.1") if trusted else ()
    process = NexusProcess(tmp_path_factory.mktemp("identity") / "data",
                           extra_args=("--log-level", "warning", *extra))
    yield process, trusted
    process.stop()


def _write_and_audit(url: str, key: str, headers: dict[str, str | bytes]) -> dict:
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
        http.post("/api/nfs/mkdir", json={"params": {"path": "/tenants/acme"}})
        reply = http.post("/api/nfs/write", headers=headers,
                          json={"params": {"path": "/tenants/acme/f",
                                           "data": {"__bytes__": "eA=="}}})
        assert reply.status_code == 200, reply.text
        events = http.post("/api/nfs/audit_query", json={
            "params": {"tenant_id": "acme", "action": "write"}}).json()["result"]["events"]
    return {"reply": reply, "event": events[-1]}


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(server) -> None:  # noqa: ANN001
    process, trusted = server
    seen = _write_and_audit(process.url, process.admin_key,
                            {"X-Forwarded-For": "203.0.113.7"})
    client = seen["event"]["client"]
    if trusted:
        assert client.startswith("203.0.113.7")
    else:
        assert client.startswith("127.0.0.1:"), client


@pytest.mark.parametrize("incoming", [
    'abc" status=200 tenant=beta', "a b", "x" * 65, "", "caf\u00e9", "-leading-dash",
])
def test_a_malformed_request_id_is_replaced(server, incoming: str) -> None:  # noqa: ANN001
    process, _ = server
    seen = _write_and_audit(process.url, process.admin_key,
                            {"X-Request-ID": incoming.encode("utf-8")})
    echoed = seen["reply"].headers["x-request-id"]
    assert echoed != incoming and len(echoed) == 16 and echoed.isalnum()
    assert seen["event"]["request_id"] == echoed


@pytest.mark.parametrize("incoming", [
    "0cc66b7634584156", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736", "01HF8Z3W6X9Q2", "req:42/a.b+c",
])
def test_a_well_formed_request_id_is_kept(server, incoming: str) -> None:  # noqa: ANN001
    process, _ = server
    seen = _write_and_audit(process.url, process.admin_key, {"X-Request-ID": incoming})
    assert seen["reply"].headers["x-request-id"] == incoming
    assert seen["event"]["request_id"] == incoming
