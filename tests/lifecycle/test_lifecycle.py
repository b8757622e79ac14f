"""Suspension, reactivation, trial expiry, deletion and the resurrection attack."""

from __future__ import annotations

import json
import time

import pytest

import nexus
from nexus.client import NexusClient
from nexus.types import Principal


@pytest.fixture
def acme(admin: NexusClient, tenant_user) -> dict[str, NexusClient]:
    admin.create_tenant("acme", "Acme Corporation", plan="pro")
    admin.create_tenant("beta", "Beta Inc", plan="pro")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.rebac_create(("user", "carol"), "can_read", ("file", "/tenants/acme/shared"))
    admin.rebac_create(("user", "bob"), "owner", ("file", "/tenants/beta"))
    users = {"alice": tenant_user("acme", "alice"), "carol": tenant_user("acme", "carol"),
             "bob": tenant_user("beta", "bob")}
    users["alice"].write("/tenants/acme/shared/plan.md", b"plan")
    return users


def test_suspend_blocks_every_key_and_reactivate_restores(admin: NexusClient, acme) -> None:
    alice, carol, bob = acme["alice"], acme["carol"], acme["bob"]
    admin.suspend_tenant("acme", "Payment overdue")
    for call in (lambda: alice.read("/tenants/acme/shared/plan.md"),
                 lambda: alice.write("/tenants/acme/shared/new.md", b"x"),
                 lambda: carol.list("/tenants/acme/shared"),
                 lambda: alice.rebac_list_tuples()):
        with pytest.raises(nexus.TenantSuspendedError, match="Payment overdue"):
            call()
    assert bob.write("/tenants/beta/shared/ok.md", b"beta unaffected")["size"] == 15
    # The administrator can still read (and export); data and grants are intact.
    assert admin.read("/tenants/acme/shared/plan.md") == b"plan"
    assert admin.get_tenant("acme")["status"] == "suspended"
    admin.reactivate_tenant("acme")
    assert alice.read("/tenants/acme/shared/plan.md") == b"plan"
    assert carol.read("/tenants/acme/shared/plan.md") == b"plan"
    with pytest.raises(nexus.NexusPermissionError):
        carol.write("/tenants/acme/shared/x.md", b"still read-only")


def test_guide_style_status_write_is_the_same_transition(admin: NexusClient, acme) -> None:
    doc = json.loads(admin.read("/tenants/acme/.tenant.json"))
    doc["status"] = "suspended"
    doc["suspension_reason"] = "Payment overdue"
    admin.write("/tenants/acme/.tenant.json", json.dumps(doc).encode())
    with pytest.raises(nexus.TenantSuspendedError):
        acme["alice"].read("/tenants/acme/shared/plan.md")
    doc["status"] = "active"
    admin.write("/tenants/acme/.tenant.json", json.dumps(doc).encode())
    assert acme["alice"].read("/tenants/acme/shared/plan.md") == b"plan"


def test_illegal_transitions_are_conflicts(admin: NexusClient, acme) -> None:
    admin.cancel_tenant("acme")
    with pytest.raises(nexus.ConflictError):
        admin.reactivate_tenant("acme")
    with pytest.raises(nexus.TenantSuspendedError):
        acme["alice"].read("/tenants/acme/shared/plan.md")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.update_tenant("beta", status="sleeping")


def test_trial_end_suspends_on_next_access(admin: NexusClient, tenant_user) -> None:
    admin.create_tenant("startup", plan="free", status="trial")
    admin.rebac_create(("user", "sam"), "owner", ("file", "/tenants/startup"))
    sam = tenant_user("startup", "sam")
    sam.write("/tenants/startup/shared/a", b"a")
    admin.update_tenant("startup", trial_ends_at=time.time() - 1)
    with pytest.raises(nexus.TenantSuspendedError, match="trial ended"):
        sam.read("/tenants/startup/shared/a")
    assert admin.get_tenant("startup")["status"] == "suspended"
    admin.upgrade_tenant("startup", "pro")
    assert admin.get_tenant("startup")["plan"] == "pro"


def test_upgrade_changes_limits_at_once(admin: NexusClient) -> None:
    admin.create_tenant("startup", plan="free", status="trial")
    assert admin.get_tenant("startup")["limits"]["max_files"] == 1000
    upgraded = admin.upgrade_tenant("startup", "pro")
    assert upgraded["limits"]["max_files"] == 50_000 and upgraded["status"] == "active"


def test_delete_needs_confirm_then_removes_everything(admin: NexusClient, acme,
                                                      service) -> None:
    with pytest.raises(nexus.ConflictError, match="would remove 1 files"):
        admin.delete_tenant("acme")
    assert admin.read("/tenants/acme/shared/plan.md") == b"plan"
    result = admin.delete_tenant("acme", confirm=True)
    assert result["deleted"] is True
    assert [t["tenant_id"] for t in admin.list_tenants()["tenants"]] == ["beta"]
    assert admin.rebac_list_tuples(tenant_id="acme") == []
    assert admin._call_rpc("admin_list_keys", {"tenant_id": "acme"}) == []
    assert list(service.files._blobs.digests("acme")) == []
    assert service.maintenance.fsck().ok


def test_resurrection_attack_fails(admin: NexusClient, acme, connect_as) -> None:
    key = admin._call_rpc("admin_create_key", {"user_id": "alice", "name": "k",
                                               "tenant_id": "acme"})["api_key"]
    old = connect_as(api_key=key)
    assert old.read("/tenants/acme/shared/plan.md") == b"plan"
    admin.delete_tenant("acme", confirm=True)
    admin.create_tenant("acme", "Acme Reborn")
    admin.write("/tenants/acme/shared/secret.md", b"new tenant")
    with pytest.raises(nexus.AuthenticationError):
        old.read("/tenants/acme/shared/secret.md")
    assert admin.rebac_list_tuples(subject=("user", "alice"), tenant_id="acme") == []
    assert admin.get_tenant("acme")["usage"]["users"] == 0
    # The old principal (same ids) holds no tuple in the new tenant either.
    ghost = connect_as(principal=Principal(user_id="alice", tenant_id="acme"))
    with pytest.raises(nexus.NexusPermissionError):
        ghost.read("/tenants/acme/shared/secret.md")
