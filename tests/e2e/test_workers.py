"""``nexus serve --workers 2``: two processes on one port behave as one server (what one
writes or changes the other knows at once, one rate limit between them), and SIGTERM
drains both — on SQLite (the workers share ``nexus.db``) and on PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

import nexus
from nexus.client import NexusClient
from nexus.tenancy import PLANS
from tests.replicas.harness import fresh_database, poll
from tests.serving import NEXUS, NexusProcess, hammer, tenant_key

WORKERS = ("--workers", "2", "--streams-per-tenant", "36", "--streams-total", "36")


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NexusProcess]:
    if request.param == "sqlite":
        process = NexusProcess(tmp_path / "data", log=tmp_path / "serve.log",
                               extra_args=WORKERS)
        yield process
        process.stop()
        return
    request.getfixturevalue("postgres_url")  # skips (locally) or fails (CI) without one
    from tests.conftest import POSTGRES_ADMIN_URL

    with fresh_database(POSTGRES_ADMIN_URL) as url:
        process = NexusProcess(tmp_path / "data", url, log=tmp_path / "serve.log",
                               extra_args=WORKERS)
        yield process
        process.stop()


def _workers(server: NexusProcess) -> list[psutil.Process]:
    """The worker processes (not multiprocessing's resource tracker)."""
    return [p for p in psutil.Process(server.pid).children()
            if "spawn_main" in " ".join(p.cmdline())]


def _clients(server: NexusProcess, key: str, tenant: str, n: int) -> list[NexusClient]:
    """At least ``n`` clients, each with its own open connection, and as many more as it
    takes for both workers to hold some (an idle worker may accept a burst alone)."""
    clients: list[NexusClient] = []
    while len(clients) < n or len(_serving_workers(server)) < 2:
        assert len(clients) < 64, "every connection went to one worker"
        clients.append(server.client(key))
        clients[-1].exists(f"/tenants/{tenant}")
    return clients


def _serving_workers(server: NexusProcess) -> set[int]:
    """The workers holding an established connection to the server's port now."""
    return {w.pid for w in _workers(server)
            for c in w.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port}


def test_two_workers_serve_one_truth(server: NexusProcess) -> None:
    assert len(_workers(server)) == 2
    with server.client() as admin:
        admin.create_tenant("wk", plan="enterprise")
        key = tenant_key(admin, "wk", "owner", owner=True)
    clients = _clients(server, key, "wk", 8)
    try:
        for round_ in range(5):
            for i, client in enumerate(clients):
                client.write(f"/tenants/wk/shared/r{round_}-{i}", b"%d" % i)
            # Every connection, whichever worker holds it, reads every write at once.
            for i in range(len(clients)):
                expected = b"%d" % i
                assert {c.read(f"/tenants/wk/shared/r{round_}-{i}") for c in clients} == \
                    {expected}
        # A suspension through one worker holds on the other within its poll interval
        # (SQLite: 20 ms; PostgreSQL: the NOTIFY), bounded here at a generous second.
        with server.client() as admin:
            admin.suspend_tenant("wk", "audit")
            for client in clients:
                poll(lambda c=client: _refused(c), seconds=1, what="the suspension")
            admin.reactivate_tenant("wk")
        for client in clients:
            listed, _ = poll(lambda c=client: _listed(c), seconds=1, what="reactivation")
            assert len(listed) == 5 * len(clients)
    finally:
        for client in clients:
            client.close()


def _refused(client: NexusClient) -> bool | None:
    try:
        client.list("/tenants/wk/shared")
    except nexus.TenantSuspendedError:
        return True
    return None


def _listed(client: NexusClient) -> list[dict[str, object]] | None:
    try:
        return client.list("/tenants/wk/shared")
    except nexus.TenantSuspendedError:
        return None


def test_two_workers_share_one_rate_limit(server: NexusProcess) -> None:
    plan = PLANS["free"]
    with server.client() as admin:
        admin.create_tenant("wkrate", plan="free")
        key = tenant_key(admin, "wkrate", "owner", owner=True)
    started = time.monotonic()
    clients = _clients(server, key, "wkrate", 6)
    admitted, refused = hammer(clients, lambda c: c.exists("/tenants/wkrate/shared"), 2.0)
    admitted += len(clients)  # each client's first call was admitted
    elapsed = time.monotonic() - started
    for client in clients:
        client.close()
    allowed = plan.burst + plan.rate_per_second * elapsed
    assert refused > admitted
    assert 0.9 * allowed <= admitted <= 1.1 * allowed, (admitted, allowed)
    with server.client() as admin:
        assert admin.get_usage("wkrate")["usage"]["api_calls"] == admitted


def test_sigterm_drains_every_worker(server: NexusProcess) -> None:
    """Uploads are mid-body on both workers when SIGTERM comes: each completes and is
    acknowledged, the server exits 0 with no worker left, and a restart reads them."""
    with server.client() as admin:
        admin.create_tenant("wkdrain", plan="enterprise")
        key = tenant_key(admin, "wkdrain", "owner", owner=True)
    clients = _clients(server, key, "wkdrain", 8)
    chunk = b"x" * 64 * 1024
    in_flight = threading.Semaphore(0)
    terminated = threading.Event()

    def body() -> Iterator[bytes]:
        yield chunk
        in_flight.release()
        terminated.wait(30)  # the rest of the body only after SIGTERM has been sent
        yield chunk

    def upload(i: int) -> str:
        path = f"/tenants/wkdrain/uploads/f{i}"
        clients[i].write(path, body())
        return path

    with ThreadPoolExecutor(len(clients)) as pool:
        futures = [pool.submit(upload, i) for i in range(len(clients))]
        for _ in clients:
            assert in_flight.acquire(timeout=60), "an upload never started"
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # the workers have the signal; the bodies are still incomplete
        terminated.set()
        acknowledged = [future.result() for future in futures]
    for client in clients:
        client.close()
    assert server.stop() == 0, server.log_tail()
    assert not _alive_children(server)
    restarted = NexusProcess(server.data_dir, server.database_url,
                             log=server.log_path, extra_args=WORKERS)
    try:
        with restarted.client(key) as owner:
            for path in acknowledged:
                assert owner.read(path) == chunk * 2, path
    finally:
        restarted.stop()


def _alive_children(server: NexusProcess) -> list[int]:
    return [p.pid for p in psutil.process_iter(["ppid"]) if p.info["ppid"] == server.pid]


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_workers_value_is_a_clear_error(value: str, tmp_path: Path) -> None:
    result = subprocess.run([*NEXUS, "serve", "--data-dir", str(tmp_path / "d"),
                             "--port", "1", "--workers", value],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--workers" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_metrics_port_with_workers_is_refused(tmp_path: Path) -> None:
    from nexus._serve import free_port

    result = subprocess.run([*NEXUS, "serve", "--data-dir", str(tmp_path / "d"),
                             "--port", str(free_port()), "--workers", "2",
                             "--metrics-port", str(free_port())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--metrics-port" in result.stderr + result.stdout
    assert not (tmp_path / "d").exists(), "refused before anything was created"
