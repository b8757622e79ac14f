"""What an operator's log collector and scraper see from a real ``nexus serve``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.serving import NexusProcess, free_port


def _rpc(url: str, key: str, method: str, **params: object) -> httpx.Response:
    return httpx.post(f"{url}/api/nfs/{method}", json={"params": params},
                      headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_json_logs_and_a_metrics_port(tmp_path: Path, database_url: str | None) -> None:
    metrics_port = free_port()
    server = NexusProcess(tmp_path / "data", database_url,
                          extra_args=("--log-format", "json", "--metrics-port",
                                      str(metrics_port)))
    try:
        admin = (tmp_path / "data" / "admin.key").read_text().strip()
        assert _rpc(server.url, admin, "create_tenant", tenant_id="acme").status_code == 200
        key = _rpc(server.url, admin, "admin_create_key", user_id="alice", name="laptop",
                   tenant_id="acme").json()["result"]["api_key"]
        _rpc(server.url, admin, "rebac_create", subject=["user", "alice"],
             relation="owner", object=["file", "/tenants/acme"])
        put = httpx.put(f"{server.url}/api/fs/content", params={"path": "/tenants/acme/a"},
                        content=b"hello", headers={"Authorization": f"Bearer {key}"})
        assert put.status_code == 200, put.text
        denied = _rpc(server.url, key, "read", path="/tenants/beta/x")
        assert denied.status_code == 403
        # The separate port serves metrics without a key; the main port still wants one.
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert scraped.status_code == 200
        assert 'nexus_requests_total{operation="content.PUT",status="200"} 1.0' in scraped.text
        assert 'nexus_blob_bytes_total{direction="in"} 5.0' in scraped.text
        assert httpx.get(f"{server.url}/metrics").status_code == 401
    finally:
        code = server.stop()
    assert code == 0
    output = server.output()
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "nexus.access"]
    by_operation = {r["operation"]: r for r in access}
    assert by_operation["content.PUT"]["tenant"] == "acme"
    assert by_operation["content.PUT"]["status"] == 200
    assert by_operation["read"]["status"] == 403
    assert by_operation["create_tenant"]["tenant"] == "admin"
    for record in access:
        assert record["request_id"] and record["duration_ms"] >= 0 and record["level"] == "INFO"
    assert key not in output and key.split("_", 2)[2] not in output
    # Everything the server printed after start-up is JSON (uvicorn's lines included).
    started = output.index("Nexus listening")
    tail = output[started:].splitlines()[1:]
    assert tail and all(line.startswith("{") for line in tail if line.strip()), tail[:5]
