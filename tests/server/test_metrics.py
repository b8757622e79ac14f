"""/metrics after a scripted workload: the counters match the workload; /health when the
database is gone."""

from __future__ import annotations

import logging
import re

import pytest
from starlette.testclient import TestClient

import nexus
from nexus.client import HTTPTransport, NexusClient
from nexus.types import Principal


def _value(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$" if labels \
        else rf"^{re.escape(name)} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_metrics_count_the_workload(app, service) -> None:  # noqa: ANN001
    http = TestClient(app)
    admin_key = service.keys.admin_create_key(Principal.local_admin(), "root", "m",
                                              is_admin=True)["api_key"]
    admin = NexusClient(HTTPTransport("http://testserver", admin_key, client=TestClient(app)))
    http.headers["Authorization"] = f"Bearer {admin_key}"
    admin.create_tenant("acme", plan="free", max_files=3)
    before = http.get("/metrics").text
    for i in range(3):
        admin.write(f"/tenants/acme/f{i}", b"x")
    with pytest.raises(nexus.QuotaExceededError):
        admin.write("/tenants/acme/f3", b"x")
    for _ in range(4):
        admin.read("/tenants/acme/f0")
    for bad in ("nope", "nx_000000000000_" + "A" * 43):
        http.post("/api/nfs/list", json={"params": {"path": "/"}},
                  headers={"Authorization": f"Bearer {bad}"})
    text = http.get("/metrics").text
    assert _value(text, "nexus_requests_total", operation="write", status="200") == 3
    assert _value(text, "nexus_requests_total", operation="write", status="413") == 1
    assert _value(text, "nexus_requests_total", operation="content.GET", status="200") == 4
    assert _value(text, "nexus_auth_failures_total") == 2
    assert _value(text, "nexus_refusals_total", reason="quota_exceeded") == 1
    assert _value(text, "nexus_tenants_by_plan", plan="free") == 1
    assert _value(text, "nexus_tenants_by_status", status="active") == 1
    assert "nexus_request_seconds_bucket" in text and "nexus_check_cache" in text
    # Blob traffic is process-wide (other tests ran in this process): compare deltas.
    read_out = (_value(text, "nexus_blob_bytes_total", direction="out")
                - _value(before, "nexus_blob_bytes_total", direction="out"))
    assert read_out == 4  # four reads of one byte
    stored = (_value(text, "nexus_blob_bytes_total", direction="in")
              - _value(before, "nexus_blob_bytes_total", direction="in"))
    assert 3 <= stored <= 4  # the refused fourth write may stage its byte first
    assert _value(text, "nexus_db_connections", state="waiting") == 0
    # The four reads' events are queued or committed; the capacity is the default.
    assert 0 <= _value(text, "nexus_audit_queue", state="queued") <= 4
    assert _value(text, "nexus_audit_queue", state="capacity") == 10_000
    # The four downloads gave their stream slots back.
    assert _value(text, "nexus_open_streams", state="open") == 0
    assert _value(text, "nexus_open_streams", state="cap") == app.state.admission.total
    assert "nexus_permission_check_seconds_count" in text
    # The endpoint is for the system administrator only.
    assert TestClient(app).get("/metrics").status_code == 401


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_key_or_secret_reaches_any_log_line(app, service, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    admin_key = service.keys.admin_create_key(Principal.local_admin(), "root", "m",
                                              is_admin=True)["api_key"]
    admin = NexusClient(HTTPTransport("http://testserver", admin_key, client=TestClient(app)))
    admin.create_tenant("acme")
    issued = [admin_key]
    issued.append(admin._call_rpc("admin_create_key", {"user_id": "alice", "name": "a",
                                                       "tenant_id": "acme"})["api_key"])
    user = NexusClient(HTTPTransport("http://testserver", issued[-1], client=TestClient(app)))
    with pytest.raises(nexus.NexusPermissionError):
        user.read("/tenants/acme/secret")
    for bad in issued:  # a revoked key, presented again, is refused and logged as refused
        TestClient(app).post("/api/nfs/list", json={"params": {"path": "/"}},
                             headers={"Authorization": f"Bearer {bad[:-2]}xx"})
    secret = (service.settings.data_dir / "deployment.secret").read_text().strip()
    text = caplog.text
    assert "request_id=" in text  # the access log ran
    for key in issued:
        assert key not in text and key.split("_", 2)[2] not in text
    assert secret not in text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_unreachable_database_is_503_not_500(app, service) -> None:  # noqa: ANN001
    from sqlalchemy import create_engine

    service.db.dialect = "postgresql"
    service.db.engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/gone",
                                      connect_args={"connect_timeout": 2})
    http = TestClient(app, raise_server_exceptions=False)
    health = http.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    call = http.post("/api/nfs/list", json={"params": {"path": "/"}},
                     headers={"Authorization": "Bearer nx_000000000000_" + "A" * 43})
    assert call.status_code == 503
    assert call.json()["error"]["data"]["code"] == "unavailable"
    assert call.headers["x-request-id"] == call.json()["error"]["data"]["request_id"]
