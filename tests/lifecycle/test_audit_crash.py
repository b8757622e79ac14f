"""A real server's batched audit events across ``kill -9`` and SIGTERM: a crash loses at
most the read events of the last batch delay and never a change event; a clean stop
loses nothing; the chain verifies after each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexus.service import bootstrap
from nexus.types import Principal
from tests.lifecycle.test_audit_durability import client
from tests.serving import NexusProcess, tenant_key

FILE = "/tenants/acme/shared/a.md"


def _start(tmp_path: Path, database_url: str | None, delay: float) -> NexusProcess:
    return NexusProcess(tmp_path / "data", database_url, log=tmp_path / "server.log",
                        extra_args=["--audit-delay", str(delay)])


def _events_after(server: NexusProcess) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    svc = bootstrap(server.settings(), create=False)
    try:
        admin = client(svc, Principal.local_admin())
        events = admin.audit_query("acme", limit=10_000)["events"]
        return events, admin.audit_verify("acme")
    finally:
        svc.close()


def _setup(server: NexusProcess) -> Any:
    admin = server.client()
    admin.create_tenant("acme", plan="pro")
    alice = server.client(tenant_key(admin, "acme", "alice", owner=True))
    alice.write(FILE, b"hello")
    return admin, alice


def test_kill_9_loses_no_change_and_no_committed_read(tmp_path: Path,
                                                       database_url: str | None) -> None:
    server = _start(tmp_path, database_url, delay=0.5)
    try:
        admin, alice = _setup(server)
        for _ in range(20):
            alice.read(FILE)
        # A query commits the server's queue: these 20 are on disk now.
        assert sum(e["action"] == "read" for e in admin.audit_query(
            "acme", limit=10_000)["events"]) == 20
        for _ in range(20):
            alice.read(FILE)  # queued: within the window
        alice.write("/tenants/acme/after.md", b"acknowledged")
    finally:
        server.kill()
    events, verified = _events_after(server)
    assert verified["ok"], verified["problems"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    writes = [e["target"] for e in events if e["action"] == "write"]
    assert "/tenants/acme/after.md" in writes  # the change's event came with the change
    reads = sum(e["action"] == "read" for e in events)
    assert 20 <= reads <= 40  # at most the queued ones are gone


def test_sigterm_commits_every_queued_read(tmp_path: Path,
                                           database_url: str | None) -> None:
    server = _start(tmp_path, database_url, delay=5.0)
    try:
        _admin, alice = _setup(server)
        for _ in range(30):
            alice.read(FILE)
    finally:
        assert server.stop() == 0
    events, verified = _events_after(server)
    assert verified["ok"], verified["problems"]
    assert sum(e["action"] == "read" for e in events) == 30
