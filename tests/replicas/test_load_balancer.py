"""deploy/nginx.conf, run by the real nginx in front of three replicas on loopback.

The site file is used as shipped except for its upstream addresses (the replicas' free
ports) and its listen line; nginx runs in the foreground with a temporary prefix, so
nothing outside ``tmp_path`` is touched. Without an nginx binary the module skips —
unless ``CI`` is set: .ci/run installs nginx, and a CI run without it is a failure.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import nexus
from nexus.client import HTTPTransport, NexusClient
from tests.conftest import POSTGRES_ADMIN_URL
from tests.serving import free_port, tenant_key

from .harness import (
    STREAM_ARGS,
    Deployment,
    fresh_database,
    local_blobs,
    poll,
    running_deployment,
)

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
MIB = 1024 * 1024
#: The address the test's client connects from: not the proxy's own (127.0.0.1), so that
#: what a replica records as the client can only have come from nginx's X-Forwarded-For.
CLIENT_ADDRESS = "127.0.0.3"


def _nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)),
        None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI (.ci/run installs it) but is not installed")
        pytest.skip("nginx is not installed (apt-get install nginx); the load balancer "
                    "config is tested only where it is")
    return found


def site_config(ports: list[int], listen: int) -> str:
    """deploy/nginx.conf with its upstream servers on ``ports`` and listening on
    ``listen`` (loopback)."""
    text = SITE.read_text()
    servers = re.findall(r"^\s*server\s+[\d.]+:\d+(.*);$", text, flags=re.M)
    assert len(servers) == len(ports), f"{SITE} names {len(servers)} upstream servers"
    lines = iter(f"    server 127.0.0.1:{port}{params};" for port, params in zip(
        ports, servers, strict=True))
    text = re.sub(r"^\s*server\s+[\d.]+:\d+.*;$", lambda _: next(lines), text, flags=re.M)
    text, listens = re.subn(r"^\s*listen\s+80;$", f"    listen 127.0.0.1:{listen};", text,
                            flags=re.M)
    assert listens == 1, f"{SITE} has no 'listen 80;' line"
    return text


def main_config(prefix: Path) -> str:
    """What /etc/nginx/nginx.conf gives a site file, confined to ``prefix``."""
    temps = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, nginx's workers would switch to an unprivileged user that cannot enter
    # the test's private temporary directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} info;\n"
            "events { worker_connections 512; }\n"
            "http {\n    log_format upstreams '$upstream_addr $status';\n"
            f"    access_log {prefix / 'access.log'} upstreams;\n{temps}\n"
            f"    include {prefix / 'nexus.conf'};\n}}\n")


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    url: str
    prefix: Path

    def log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace")[-3000:]

    def upstreams(self) -> set[str]:
        """The replica addresses requests went to (nginx's access log)."""
        lines = (self.prefix / "access.log").read_text().split()
        return {word.rstrip(",") for word in lines if ":" in word}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_nginx(binary: str, prefix: Path, ports: list[int]) -> Nginx:
    prefix.mkdir(parents=True)
    listen = free_port()
    (prefix / "nexus.conf").write_text(site_config(ports, listen))
    (prefix / "nginx.conf").write_text(main_config(prefix))
    proc = subprocess.Popen([binary, "-p", str(prefix), "-e", str(prefix / "error.log"),
                             "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    nginx = Nginx(proc, f"http://127.0.0.1:{listen}", prefix)

    def healthy() -> bool | None:
        assert proc.poll() is None, f"nginx exited {proc.returncode}:\n{nginx.log()}"
        try:
            return True if httpx.get(nginx.url + "/health", timeout=2).status_code == 200 \
                else None
        except httpx.TransportError:
            return None

    try:
        poll(healthy, seconds=30, interval=0.05, what="nginx answering /health")
    except BaseException:
        nginx.stop()
        raise
    return nginx


@dataclass
class Balanced:
    deployment: Deployment
    nginx: Nginx

    def client(self, api_key: str) -> NexusClient:
        """A client of nginx connecting from :data:`CLIENT_ADDRESS`."""
        http = httpx.Client(base_url=self.nginx.url, timeout=60,
                            transport=httpx.HTTPTransport(local_address=CLIENT_ADDRESS))
        return nexus.connect(transport=HTTPTransport(self.nginx.url, api_key, client=http))


@pytest.fixture
def balanced(postgres_url: str, tmp_path: Path) -> Iterator[Balanced]:
    """Three replicas (believing X-Forwarded-For from 127.0.0.1, the proxy) and nginx."""
    binary = _nginx_binary()
    with fresh_database(POSTGRES_ADMIN_URL) as url, running_deployment(
            tmp_path, url, local_blobs(tmp_path / "shared-blobs"),
            extra_args=(*STREAM_ARGS, "--forwarded-allow-ips", "127.0.0.1")) as deployment:
        nginx = start_nginx(binary, tmp_path / "nginx",
                            [r.port for r in deployment.replicas])
        try:
            yield Balanced(deployment, nginx)
        finally:
            nginx.stop()


def _owner(balanced: Balanced, tenant: str) -> NexusClient:
    with balanced.deployment.client(0) as admin:
        admin.create_tenant(tenant, plan="enterprise")
        return balanced.client(tenant_key(admin, tenant, "owner", owner=True))


def test_writes_reads_and_a_streamed_upload_through_nginx(balanced: Balanced) -> None:
    client = _owner(balanced, "lb")
    try:
        for n in range(30):  # spread over the replicas (least_conn, keep-alive)
            client.write(f"/tenants/lb/small/f{n}.txt", f"file {n}".encode())
        assert all(client.read(f"/tenants/lb/small/f{n}.txt") == f"file {n}".encode()
                   for n in range(30))
        size, digest = 96 * MIB, hashlib.sha256()

        def chunks() -> Iterator[bytes]:
            for i in range(size // MIB):
                chunk = bytes([i % 251]) * MIB
                digest.update(chunk)
                yield chunk

        answer = client.write("/tenants/lb/big.bin", chunks())
        assert answer["size"] == size and answer["etag"] == digest.hexdigest()
        back = hashlib.sha256()
        for chunk in client.read_stream("/tenants/lb/big.bin"):
            back.update(chunk)
        assert back.hexdigest() == digest.hexdigest()
        # Every replica got some of the traffic, and nginx spooled no body to disk.
        ports = {f"127.0.0.1:{r.port}" for r in balanced.deployment.replicas}
        assert balanced.nginx.upstreams() == ports
        with balanced.deployment.client(0) as admin:
            events = admin.audit_query("lb", action="write", limit=100)["events"]
        clients = {e["client"].rsplit(":", 1)[0] for e in events}
        assert clients == {CLIENT_ADDRESS}, clients  # via X-Forwarded-For, not the proxy
        spooled = [p for p in (balanced.nginx.prefix / "client_body").rglob("*")
                   if p.is_file()]
        assert not spooled, f"nginx buffered request bodies: {spooled}"
        assert "a client request body is buffered" not in balanced.nginx.log()
    finally:
        client.close()


def test_a_spoofed_x_forwarded_for_does_not_pass_nginx(balanced: Balanced) -> None:
    with balanced.deployment.client(0) as admin:
        admin.create_tenant("spoof", plan="enterprise")
        key = tenant_key(admin, "spoof", "owner", owner=True)
    with httpx.Client(base_url=balanced.nginx.url, timeout=30,
                      transport=httpx.HTTPTransport(local_address=CLIENT_ADDRESS),
                      headers={"Authorization": f"Bearer {key}",
                               "X-Forwarded-For": "203.0.113.7"}) as http:
        reply = http.post("/api/nfs/write", json={"params": {
            "path": "/tenants/spoof/f", "data": {"__bytes__": "eA=="}}})
        assert reply.status_code == 200, reply.text
    with balanced.deployment.client(1) as admin:
        (event,) = admin.audit_query("spoof", action="write")["events"]
    assert event["client"].startswith(CLIENT_ADDRESS + ":") or \
        event["client"] == CLIENT_ADDRESS, event["client"]


def test_stopping_a_replica_keeps_requests_working(balanced: Balanced) -> None:
    client = _owner(balanced, "failover")
    stopped = balanced.deployment.replicas[1]
    failures: list[str] = []
    try:
        for n in range(10):
            client.write(f"/tenants/failover/before{n}.txt", b"before")
        assert stopped.stop() == 0  # SIGTERM: it drains, then refuses connections
        started = time.monotonic()
        for n in range(60):
            path = f"/tenants/failover/after{n}.txt"
            try:
                client.write(path, f"after {n}".encode())
                assert client.read(path) == f"after {n}".encode()
                assert client.read(f"/tenants/failover/before{n % 10}.txt") == b"before"
            except nexus.NexusError as exc:
                failures.append(f"{path}: {type(exc).__name__}: {exc}")
        assert not failures, (f"{len(failures)} of 60 rounds failed after one replica "
                              f"stopped ({time.monotonic() - started:.1f} s): {failures[:3]}")
    finally:
        client.close()
