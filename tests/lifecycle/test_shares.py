"""Cross-tenant shares: readable by the target, refused after revoke and expiry, never
writable with can_read, invisible to a third tenant, dead while the source is suspended."""

from __future__ import annotations

import time

import pytest

import nexus
from nexus.client import NexusClient

DOC = "/tenants/acme/shared/partnership-proposal.pdf"


@pytest.fixture
def parties(admin: NexusClient, tenant_user) -> dict[str, NexusClient]:
    for tenant, owner in (("acme", "alice"), ("beta", "bob"), ("corp", "cyd")):
        admin.create_tenant(tenant, plan="pro")
        admin.rebac_create(("user", owner), "owner", ("file", f"/tenants/{tenant}"))
    admin.write(DOC, b"%PDF proposal")
    return {"alice": tenant_user("acme", "alice"), "bob": tenant_user("beta", "bob"),
            "cyd": tenant_user("corp", "cyd"), "beta_member": tenant_user("beta", "bea")}


def test_share_read_revoke(parties, admin: NexusClient) -> None:
    alice, bob, cyd, bea = (parties[k] for k in ("alice", "bob", "cyd", "beta_member"))
    with pytest.raises(nexus.NexusPermissionError):
        bob.read(DOC)
    share = alice.create_share(DOC, "beta", permission="can_read", expires_in_days=30)
    assert share["status"] == "active" and share["target_tenant"] == "beta"
    assert bob.read(DOC) == b"%PDF proposal"
    assert bea.read(DOC) == b"%PDF proposal"  # every member of beta
    with pytest.raises(nexus.NexusPermissionError):
        bob.write(DOC, b"tampered")
    with pytest.raises(nexus.NexusPermissionError):
        cyd.read(DOC)
    assert [s["share_id"] for s in alice.list_shares("acme")] == [share["share_id"]]
    assert [s["share_id"] for s in bob.list_shares("beta", direction="incoming")] \
        == [share["share_id"]]
    with pytest.raises(nexus.NexusPermissionError):
        cyd.list_shares("acme")
    with pytest.raises(nexus.NexusPermissionError):
        bob.revoke_share(share["share_id"])
    alice.revoke_share(share["share_id"])
    with pytest.raises(nexus.NexusPermissionError):
        bob.read(DOC)
    assert alice.list_shares("acme") == []
    assert alice.list_shares("acme", include_expired=True)[0]["status"] == "revoked"
    assert admin.read(DOC) == b"%PDF proposal"


def test_share_expiry_and_write_shares(parties, admin: NexusClient) -> None:
    alice, bob = parties["alice"], parties["bob"]
    alice.create_share(DOC, "beta", expires_at=time.time() + 0.6)
    assert bob.read(DOC) == b"%PDF proposal"
    time.sleep(0.7)
    with pytest.raises(nexus.NexusPermissionError):
        bob.read(DOC)
    alice.mkdir("/tenants/acme/shared/drafts")
    alice.create_share("/tenants/acme/shared/drafts", "beta", permission="can_write")
    bob.write("/tenants/acme/shared/drafts/joint.md", b"joint work")
    assert alice.read("/tenants/acme/shared/drafts/joint.md") == b"joint work"
    # Content written through a share is the source tenant's, on its quota.
    assert admin.get_tenant("beta")["usage"]["files"] == 0
    assert admin.get_tenant("acme")["usage"]["files"] == 2


def test_share_dies_with_a_suspended_source_and_a_deleted_target(parties,
                                                                 admin: NexusClient) -> None:
    alice, bob = parties["alice"], parties["bob"]
    alice.create_share(DOC, "beta")
    admin.suspend_tenant("acme", "audit")
    with pytest.raises(nexus.NexusPermissionError):
        bob.read(DOC)
    admin.reactivate_tenant("acme")
    assert bob.read(DOC) == b"%PDF proposal"
    admin.delete_tenant("beta", confirm=True)
    assert admin.list_shares("acme") == []
    assert [t for t in admin.rebac_list_tuples(tenant_id="acme")
            if t["subject_type"] == "tenant"] == []


def test_only_owners_share_and_guide_step4_call_works(parties, admin: NexusClient) -> None:
    bob = parties["bob"]
    with pytest.raises(nexus.NexusPermissionError):
        bob.create_share(DOC, "beta")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.create_share(DOC, "acme")
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.create_share(DOC, "nobody")
    # The guide's Step 4: an admin grant to ("tenant", "beta") on a path in beta's space,
    # with tenant_id="acme" — an ordinary grant to beta's members in beta.
    target = "/tenants/beta/shared/from-acme"
    admin.mkdir(target)
    admin.rebac_create(subject=("tenant", "beta"), relation="can_read",
                       object=("file", f"{target}/partnership-proposal.pdf"), tenant_id="acme")
    assert admin.rebac_list_tuples(object=("file", f"{target}/partnership-proposal.pdf"))[0][
        "tenant_id"] == "beta"
    # An admin grant from acme's path to beta is recorded as a share.
    admin.rebac_create(subject=("tenant", "beta"), relation="can_read", object=("file", DOC))
    assert [s["path"] for s in admin.list_shares("acme")] == [DOC]
    assert bob.read(DOC) == b"%PDF proposal"


def test_share_appears_in_the_target_tenant_as_a_live_reference(parties,
                                                                admin: NexusClient) -> None:
    alice, bob, cyd = parties["alice"], parties["bob"], parties["cyd"]
    alias = "/tenants/beta/shared/from-acme/partnership-proposal.pdf"
    with pytest.raises(nexus.NexusFileNotFoundError):
        bob.read(alias)  # nothing shared yet: an ordinary (missing) path of bob's tenant
    alice.create_share(DOC, "beta")
    assert bob.read(alias) == b"%PDF proposal"
    assert parties["beta_member"].read(alias) == b"%PDF proposal"  # every member of beta
    assert [e["path"] for e in bob.list("/tenants/beta/shared/from-acme")] == [alias]
    assert bob.stat("/tenants/beta/shared/from-acme")["type"] == "directory"
    admin.write(DOC, b"%PDF v2")  # live: the alias reads the current source
    assert bob.read(alias) == b"%PDF v2"
    with pytest.raises(nexus.NexusPermissionError):
        bob.write(alias, b"tampered")  # can_read share
    assert admin.read(DOC) == b"%PDF v2"
    for attack in (lambda: cyd.read(alias), lambda: cyd.list("/tenants/beta/shared/from-acme")):
        with pytest.raises(nexus.NexusPermissionError):
            attack()
    share = alice.list_shares("acme")[0]
    alice.revoke_share(share["share_id"])
    with pytest.raises(nexus.NexusPermissionError):
        parties["beta_member"].read(alias)
    with pytest.raises(nexus.NexusFileNotFoundError):
        bob.read(alias)  # the alias is gone; bob owns beta, so it is just a missing path
    assert admin.get_tenant("beta")["usage"]["files"] == 0  # never on the target's quota


def test_share_records_follow_their_files(parties, admin: NexusClient) -> None:
    alice, bob = parties["alice"], parties["bob"]
    first = alice.create_share(DOC, "beta", expires_in_days=1)
    again = alice.create_share(DOC, "beta", expires_in_days=30)
    assert again["share_id"] == first["share_id"]  # one grant, one share
    assert len(alice.list_shares("acme")) == 1
    admin.rename(DOC, "/tenants/acme/shared/renamed.pdf")
    assert alice.list_shares("acme")[0]["path"] == "/tenants/acme/shared/renamed.pdf"
    assert bob.read("/tenants/beta/shared/from-acme/renamed.pdf") == b"%PDF proposal"
    admin.delete("/tenants/acme/shared/renamed.pdf")
    assert alice.list_shares("acme") == []
    assert alice.list_shares("acme", include_expired=True)[0]["status"] == "revoked"


def test_tenant_owner_cannot_delete_the_tenant(parties, admin: NexusClient) -> None:
    with pytest.raises(nexus.NexusPermissionError):
        parties["alice"].rmdir("/tenants/acme", recursive=True)
    assert admin.read(DOC) == b"%PDF proposal"
    assert admin.get_tenant("acme")["status"] == "active"


def test_rebac_check_answers_like_the_enforcement_point(parties, admin: NexusClient) -> None:
    admin.rebac_create(("user", "*"), "can_read", ("file", "/tenants/acme/public"))
    admin.write("/tenants/acme/public/p.md", b"p")
    assert admin.rebac_check(("user", "anyone"), "can_read", ("file", "/tenants/acme/public"))
    # A user of another tenant is not "everyone" in acme.
    assert not admin.rebac_check(("user", "beta/bob"), "can_read",
                                 ("file", "/tenants/acme/public/p.md"))
    with pytest.raises(nexus.NexusPermissionError):
        parties["bob"].read("/tenants/acme/public/p.md")


def test_sharing_a_missing_path_is_an_error_and_grants_nothing(parties,
                                                               admin: NexusClient) -> None:
    # A share of a path that does not exist would wait for whatever is written there later.
    alice, bob = parties["alice"], parties["bob"]
    ghost = "/tenants/acme/shared/not-yet.txt"
    with pytest.raises(nexus.NexusFileNotFoundError, match="not-yet.txt"):
        alice.create_share(ghost, "beta")
    assert alice.list_shares("acme", include_expired=True) == []
    alice.write(ghost, b"later")
    with pytest.raises(nexus.NexusPermissionError):
        bob.read(ghost)
