"""The audit log: one event per operation, gapless, hash-chained, tamper-evident."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

import nexus
from nexus.client import NexusClient
from tests.lifecycle.audit_events import all_events


@pytest.fixture
def acme(admin: NexusClient, tenant_user) -> dict[str, NexusClient]:
    admin.create_tenant("acme", plan="pro")
    admin.create_tenant("beta", plan="pro")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.rebac_create(("user", "bob"), "owner", ("file", "/tenants/beta"))
    return {"alice": tenant_user("acme", "alice"), "bob": tenant_user("beta", "bob")}


def test_operations_denials_and_reads_are_recorded(admin: NexusClient, acme) -> None:
    alice, bob = acme["alice"], acme["bob"]
    alice.write("/tenants/acme/shared/a.md", b"a")
    alice.read("/tenants/acme/shared/a.md")
    alice.delete("/tenants/acme/shared/a.md")
    with pytest.raises(nexus.NexusPermissionError):
        bob.read("/tenants/acme/shared/a.md")
    events = all_events(admin, "acme")
    actions = [(e["action"], e["user_id"], e["result"]) for e in events]
    assert ("write", "alice", "ok") in actions and ("read", "alice", "ok") in actions
    assert ("delete", "alice", "ok") in actions
    assert ("deny.can_read", "bob", "denied") in actions
    assert ("tenant.create", "local-admin", "ok") in actions
    assert ("grant", "local-admin", "ok") in actions
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    mine = all_events(admin, "acme", user="alice", action="write")
    assert [e["target"] for e in mine] == ["/tenants/acme/shared/a.md"]
    assert alice.audit_verify("acme")["ok"]  # a tenant's admin reads its own log
    with pytest.raises(nexus.NexusPermissionError):
        bob.audit_query("acme")
    lines = admin.audit_export("acme").decode().splitlines()
    assert len(lines) == len(events)


def test_reads_can_be_switched_off_per_tenant(admin: NexusClient, acme) -> None:
    alice = acme["alice"]
    alice.write("/tenants/acme/x", b"x")
    admin.update_tenant("acme", settings={"audit_reads": False})
    before = len(all_events(admin, "acme"))
    alice.read("/tenants/acme/x")
    alice.list("/tenants/acme")
    assert len(all_events(admin, "acme")) == before
    alice.write("/tenants/acme/y", b"y")  # changes are always recorded
    assert len(all_events(admin, "acme")) == before + 1


def test_twenty_concurrent_writers_one_event_each_no_gaps(admin: NexusClient, acme) -> None:
    alice = acme["alice"]
    before = len(all_events(admin, "acme"))

    def writer(i: int) -> None:
        for j in range(5):
            alice.write(f"/tenants/acme/load/w{i}-{j}", b"x")

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(writer, range(20)))
    events = all_events(admin, "acme")
    writes = [e for e in events[before:] if e["action"] == "write"]
    assert len(writes) == 100
    assert len({e["target"] for e in writes}) == 100
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert admin.audit_verify("acme") == {"tenant_id": "acme", "ok": True,
                                          "events": len(events), "problems": []}


def test_verify_catches_edited_and_missing_events(admin: NexusClient, acme, service) -> None:
    acme["alice"].write("/tenants/acme/a", b"a")
    acme["alice"].write("/tenants/acme/b", b"b")
    assert admin.audit_verify("acme")["ok"]
    with service.db.write() as conn:
        conn.execute(text("UPDATE audit_events SET user_id = 'mallory' "
                          "WHERE tenant_id = 'acme' AND seq = 2"))
    report = admin.audit_verify("acme")
    assert not report["ok"] and any("event 2" in p for p in report["problems"])
    with service.db.write() as conn:
        conn.execute(text("UPDATE audit_events SET user_id = "
                          "(SELECT user_id FROM audit_events WHERE tenant_id = 'acme' "
                          "AND seq = 1) WHERE tenant_id = 'acme' AND seq = 2"))
        last = conn.execute(text("SELECT MAX(seq) FROM audit_events "
                                 "WHERE tenant_id = 'acme'")).scalar_one()
        conn.execute(text(f"DELETE FROM audit_events WHERE tenant_id = 'acme' AND seq = {last}"))
    report = admin.audit_verify("acme")
    assert not report["ok"] and any("removed" in p for p in report["problems"])


def test_tenant_deletion_leaves_a_tombstone(admin: NexusClient, acme) -> None:
    admin.delete_tenant("acme", confirm=True)
    system = all_events(admin, "_system")
    assert [e["target"] for e in system if e["action"] == "tenant.delete"] == ["/tenants/acme"]
    assert admin.audit_verify("_system")["ok"]


def test_retention_prunes_old_events_and_the_chain_still_verifies(admin: NexusClient, acme,
                                                                  service) -> None:
    acme["alice"].write("/tenants/acme/old", b"o")
    with service.db.write() as conn:  # age every event so far by 100 days
        conn.execute(text("UPDATE audit_events SET at = at - 8640000 "
                          "WHERE tenant_id = 'acme'"))
    old_count = len(all_events(admin, "acme"))
    admin.update_tenant("acme", settings={"data_retention_days": 90})
    acme["alice"].write("/tenants/acme/new", b"n")
    removed = service.maintenance.gc(grace_seconds=3600).audit_events_removed
    assert removed == old_count
    remaining = all_events(admin, "acme")
    assert [e["action"] for e in remaining] == ["tenant.update", "write"]
    report = admin.audit_verify("acme")
    assert report["ok"] and report["events"] == 2


def test_the_log_of_a_tenant_that_does_not_exist_is_an_error(admin: NexusClient,
                                                              acme) -> None:
    # An empty page would read as "nothing happened there".
    for call in (lambda: admin.audit_query("nosuch"), lambda: admin.audit_verify("nosuch"),
                 lambda: admin.audit_export("nosuch")):
        with pytest.raises(nexus.NexusFileNotFoundError, match="nosuch"):
            call()
    admin.delete_tenant("acme", confirm=True)
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.audit_query("acme")
