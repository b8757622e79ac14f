"""Durability classes of audit events: changes in their own transaction, reads and denials
committed in batches (``settings.audit_reads`` = ``batched``, the default), each at once
(``sync``) or not at all (``off``; denials are still recorded)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

import nexus
from nexus.client import LocalTransport, NexusClient
from nexus.service import NexusService, bootstrap
from nexus.service.audit_writer import AuditWriter, PendingEvent
from nexus.settings import Settings
from nexus.store.audit import AuditRepository
from nexus.store.schema import audit_events
from nexus.types import Principal

ALICE = Principal(user_id="alice", tenant_id="acme", key_id="k-alice")
BOB = Principal(user_id="bob", tenant_id="beta", key_id="k-bob")
FILE = "/tenants/acme/shared/a.md"


def stored(svc: NexusService, tenant: str, action: str | None = None) -> list[dict[str, Any]]:
    """The events committed so far, read from the database (no flush)."""
    query = select(audit_events).where(audit_events.c.tenant_id == tenant)
    if action is not None:
        query = query.where(audit_events.c.action == action)
    with svc.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(audit_events.c.seq))]


def client(svc: NexusService, principal: Principal) -> NexusClient:
    return NexusClient(LocalTransport(svc, principal=principal, owns_service=False))


@pytest.fixture
def slow_writer(settings: Settings) -> Iterator[NexusService]:
    """A deployment whose batches wait 10 s: nothing batched commits unless flushed."""
    svc = bootstrap(replace(settings, audit_delay=10.0))
    admin = client(svc, Principal.local_admin())
    admin.create_tenant("acme", plan="pro")
    admin.create_tenant("beta", plan="pro")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.write(FILE, b"hello")
    yield svc
    svc.close()


def test_reads_and_denials_wait_for_their_batch_changes_do_not(slow_writer) -> None:
    alice, bob = client(slow_writer, ALICE), client(slow_writer, BOB)
    for _ in range(5):
        alice.read(FILE)
    with pytest.raises(nexus.NexusPermissionError):
        bob.read(FILE)
    assert stored(slow_writer, "acme", "read") == []  # queued, not yet committed
    alice.write("/tenants/acme/b.md", b"b")  # a change commits with its event
    assert [e["target"] for e in stored(slow_writer, "acme", "write")][-1] == \
        "/tenants/acme/b.md"
    # A query flushes this process's queue first: a caller sees its own reads.
    events = client(slow_writer, Principal.local_admin()).audit_query("acme",
                                                                       limit=1000)["events"]
    actions = [e["action"] for e in events]
    assert actions.count("read") == 5 and "deny.can_read" in actions
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert client(slow_writer, Principal.local_admin()).audit_verify("acme")["ok"]


def test_a_clean_shutdown_commits_every_queued_event(settings: Settings) -> None:
    svc = bootstrap(replace(settings, audit_delay=10.0))
    admin = client(svc, Principal.local_admin())
    admin.create_tenant("acme", plan="pro")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.write(FILE, b"hello")
    alice = client(svc, ALICE)
    for _ in range(50):
        alice.read(FILE)
    assert stored(svc, "acme", "read") == []
    svc.close()
    again = bootstrap(settings)
    try:
        assert len(stored(again, "acme", "read")) == 50
        assert client(again, Principal.local_admin()).audit_verify("acme")["ok"]
    finally:
        again.close()


@pytest.mark.parametrize("mode", ["sync", "batched", True])
def test_sync_tenants_commit_each_read_at_once(slow_writer, mode: object) -> None:
    admin = client(slow_writer, Principal.local_admin())
    admin.update_tenant("acme", settings={"audit_reads": mode})
    client(slow_writer, ALICE).read(FILE)
    committed = stored(slow_writer, "acme", "read")
    assert len(committed) == (1 if mode == "sync" else 0)


@pytest.mark.parametrize("mode", ["off", False])
def test_off_records_no_reads_but_every_denial(slow_writer, mode: object) -> None:
    admin = client(slow_writer, Principal.local_admin())
    admin.update_tenant("acme", settings={"audit_reads": mode})
    client(slow_writer, ALICE).read(FILE)
    client(slow_writer, ALICE).list("/tenants/acme")
    with pytest.raises(nexus.NexusPermissionError):
        client(slow_writer, BOB).read(FILE)
    actions = [e["action"] for e in admin.audit_query("acme", limit=1000)["events"]]
    assert "read" not in actions and "list" not in actions
    assert "deny.can_read" in actions


@pytest.mark.parametrize("bad", ["always", 1, None, ["sync"]])
def test_an_unknown_audit_mode_is_refused(slow_writer, bad: object) -> None:
    admin = client(slow_writer, Principal.local_admin())
    with pytest.raises(nexus.InvalidArgumentError, match="audit_reads"):
        admin.update_tenant("acme", settings={"audit_reads": bad})
    with pytest.raises(nexus.InvalidArgumentError, match="audit_reads"):
        admin.create_tenant("gamma", settings={"audit_reads": bad})


def test_a_read_of_a_deleted_and_recreated_tenant_stays_out_of_the_new_log(
        slow_writer) -> None:
    # The read is queued, the tenant deleted and its id re-used before the batch commits:
    # the new tenant's log must not open with the old tenant's read.
    client(slow_writer, ALICE).read(FILE)
    admin = client(slow_writer, Principal.local_admin())
    admin.delete_tenant("acme", confirm=True)
    admin.create_tenant("acme", plan="free")
    slow_writer.audit.flush()
    assert stored(slow_writer, "acme", "read") == []
    moved = [e for e in stored(slow_writer, "_system", "read") if e["user_id"] == "alice"]
    assert len(moved) == 1 and "did not exist" in moved[0]["detail"]
    assert admin.audit_verify("acme")["ok"] and admin.audit_verify("_system")["ok"]


def test_a_denial_on_a_tenant_that_does_not_exist_starts_no_chain(slow_writer) -> None:
    with pytest.raises(nexus.NexusPermissionError):
        client(slow_writer, BOB).read("/tenants/ghost/secret.txt")
    admin = client(slow_writer, Principal.local_admin())
    admin.create_tenant("ghost", plan="free")
    slow_writer.audit.flush()
    assert [e["action"] for e in stored(slow_writer, "ghost")] == ["tenant.create"]


class _Held:
    """A database whose commits wait until the test opens the gate."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.gate = threading.Event()

    def run(self, work: Any, **kwargs: Any) -> Any:
        self.gate.wait()
        return self.db.run(work, **kwargs)


def _event(i: int) -> PendingEvent:
    return PendingEvent((("_system", None),), {
        "at": float(i), "user_id": f"u{i}", "key_id": None, "action": "read",
        "target": f"/exports/{i}", "result": "ok", "detail": None, "request_id": None,
        "client": None})


def test_a_full_queue_makes_recorders_wait_and_loses_nothing(service: NexusService) -> None:
    held = _Held(service.db)
    writer = AuditWriter(held, delay=0.0, capacity=8)  # type: ignore[arg-type]
    submitters = [threading.Thread(target=lambda i=i: writer.submit(_event(i)))
                  for i in range(40)]
    for thread in submitters:
        thread.start()
    # With the commit held, 8 submitters get in and return; the other 32 wait (were the
    # queue unbounded, all 40 would return).
    _until(lambda: sum(t.is_alive() for t in submitters) <= 32)
    assert sum(t.is_alive() for t in submitters) == 32 and writer.depth == 8
    held.gate.set()
    for thread in submitters:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in submitters)
    assert writer.flush(timeout=30)
    writer.close()
    users = {e["user_id"] for e in stored(service, "_system", "read")}
    assert users == {f"u{i}" for i in range(40)}
    with service.db.read() as conn:
        assert AuditRepository(conn).verify("_system")[1] == []


def _until(condition: Any, bound: float = 10.0) -> None:
    """Poll ``condition()`` until it holds or ``bound`` seconds pass."""
    done = threading.Event()
    deadline = threading.Timer(bound, done.set)
    deadline.start()
    try:
        while not condition() and not done.wait(0.01):
            pass
    finally:
        deadline.cancel()


def test_a_failed_batch_is_retried_not_dropped(service: NexusService) -> None:
    class Flaky:
        failures = 2

        def run(self, work: Any, **kwargs: Any) -> Any:
            if Flaky.failures:
                Flaky.failures -= 1
                raise nexus.UnavailableError("database is down")
            return service.db.run(work, **kwargs)

    writer = AuditWriter(Flaky(), delay=0.0)  # type: ignore[arg-type]
    for i in range(3):
        writer.submit(_event(i))
    assert writer.flush(timeout=30)
    writer.close()
    assert len(stored(service, "_system", "read")) == 3


class _Down:
    """A database that is unreachable."""

    def run(self, work: Any, **kwargs: Any) -> Any:
        raise nexus.UnavailableError("database is down")


def test_a_shutdown_with_the_database_down_ends_and_counts_what_it_lost() -> None:
    writer = AuditWriter(_Down(), delay=0.0)  # type: ignore[arg-type]
    for i in range(3):
        writer.submit(_event(i))
    closer = threading.Thread(target=writer.close, kwargs={"timeout": 0.2})
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive()
    assert writer.lost == 3 and writer.depth == 0
    assert writer.flush(timeout=1)  # nothing left to wait for


def test_one_event_the_database_refuses_does_not_hold_back_the_others(
        service: NexusService) -> None:
    class Refusing:
        """Refuses any batch that holds user "poison" (as a constraint would)."""

        def run(self, work: Any, **kwargs: Any) -> Any:
            batch = work.keywords["batch"]
            if any(e.fields["user_id"] == "poison" for e in batch):
                raise ValueError("refused")
            return service.db.run(work, **kwargs)

    writer = AuditWriter(Refusing(), delay=0.0)  # type: ignore[arg-type]
    writer.submit(_event(1))
    writer.submit(PendingEvent((("_system", None),), {**_event(2).fields,
                                                      "user_id": "poison"}))
    writer.submit(_event(3))
    assert writer.flush(timeout=60)
    writer.close()
    users = [e["user_id"] for e in stored(service, "_system", "read")]
    assert users == ["u1", "u3"] and writer.lost == 1


def test_a_read_from_a_very_long_client_address_is_audited(slow_writer) -> None:
    # Behind a trusted proxy the address is X-Forwarded-For's, of any length: an event
    # the database would refuse must not exist, or the read would go unaudited.
    from starlette.testclient import TestClient

    from nexus.client import HTTPTransport
    from nexus.server import create_app

    key = slow_writer.keys.admin_create_key(Principal.local_admin(), "alice", "k",
                                            tenant_id="acme")["api_key"]
    spoofed = TestClient(create_app(service=slow_writer),
                         client=("203.0.113.7-" + "x" * 500, 443))
    with NexusClient(HTTPTransport("http://testserver", key, client=spoofed)) as alice:
        assert alice.read(FILE) == b"hello"
    slow_writer.audit.flush()
    reads = stored(slow_writer, "acme", "read")
    assert len(reads) == 1 and reads[0]["client"].startswith("203.0.113.7-")
    assert len(reads[0]["client"]) <= 64 and slow_writer.audit._writer.lost == 0


def test_after_close_the_writer_hands_events_back(service: NexusService) -> None:
    # A recorder that arrives (or waited on a full queue) while the writer shuts down
    # gets its event back to commit itself: nothing is queued behind a stopped thread.
    writer = AuditWriter(service.db, delay=0.0)
    assert writer.submit(_event(1))
    writer.close()
    assert writer.submit(_event(2)) is False
    assert [e["user_id"] for e in stored(service, "_system", "read")] == ["u1"]
