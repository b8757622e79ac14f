"""ReBAC enforcement: the guide's grants give exactly the access the guide describes.

Every test attacks as well as uses: the other tenant's read, list, stat and self-grant,
a revoked or expired tuple, an unknown relation.
"""

from __future__ import annotations

import time

import pytest

import nexus
from nexus.client import NexusClient

#: The client suite: every test here runs through the sync and the async client.
pytestmark = pytest.mark.both_clients

ACME, BETA = "/tenants/acme", "/tenants/beta"


@pytest.fixture
def guide(admin: NexusClient, tenant_user) -> dict[str, NexusClient]:
    """The guide's Step 2: two tenants, their admins, an editor and a viewer in acme."""
    for tenant in ("acme", "beta"):
        for sub in ("users", "shared", "uploads", "exports"):
            admin.mkdir(f"/tenants/{tenant}/{sub}")
    admin.rebac_create(("user", "alice"), "owner", ("file", ACME), tenant_id="acme")
    admin.rebac_create(("user", "bob"), "owner", ("file", BETA), tenant_id="beta")
    admin.rebac_create(("user", "charlie"), "can_write", ("file", f"{ACME}/shared"),
                       tenant_id="acme")
    admin.rebac_create(("user", "diana"), "can_read", ("file", f"{ACME}/shared"),
                       tenant_id="acme")
    for user in ("charlie", "diana"):
        admin.mkdir(f"{ACME}/users/{user}")
        admin.rebac_create(("user", user), "owner", ("file", f"{ACME}/users/{user}"),
                           tenant_id="acme")
    return {name: tenant_user("beta" if name == "bob" else "acme", name)
            for name in ("alice", "bob", "charlie", "diana")}


def test_owner_of_tenant_root_reads_and_writes_everything_below(guide) -> None:
    alice = guide["alice"]
    alice.write(f"{ACME}/shared/project-plan.md", b"plan")
    alice.write(f"{ACME}/users/alice/notes.md", b"notes")
    assert alice.read(f"{ACME}/shared/project-plan.md") == b"plan"
    listed = [e["path"] for e in alice.list(ACME, recursive=True)]
    assert f"{ACME}/users/alice/notes.md" in listed
    assert all(p.startswith(ACME + "/") for p in listed)


def test_isolation_between_tenants(guide, admin: NexusClient) -> None:
    alice, bob = guide["alice"], guide["bob"]
    alice.write(f"{ACME}/shared/project-plan.md", b"CONFIDENTIAL - Acme")
    bob.write(f"{BETA}/shared/roadmap.md", b"CONFIDENTIAL - Beta")
    attacks = [
        lambda: bob.read(f"{ACME}/shared/project-plan.md"),
        lambda: bob.stat(f"{ACME}/shared/project-plan.md"),
        lambda: bob.exists(f"{ACME}/shared/project-plan.md"),
        lambda: bob.exists(f"{ACME}/shared/no-such-file"),
        lambda: bob.list(ACME, recursive=True),
        lambda: bob.list("/tenants"),
        lambda: bob.write(f"{ACME}/shared/evil.md", b"x"),
        lambda: bob.append(f"{ACME}/shared/project-plan.md", b"x"),
        lambda: bob.delete(f"{ACME}/shared/project-plan.md"),
        lambda: bob.rmdir(f"{ACME}/shared", recursive=True),
        lambda: bob.copy(f"{ACME}/shared/project-plan.md", f"{BETA}/stolen.md"),
        lambda: bob.rename(f"{ACME}/shared/project-plan.md", f"{BETA}/stolen.md"),
        lambda: alice.read(f"{BETA}/shared/roadmap.md"),
    ]
    for attack in attacks:
        with pytest.raises(nexus.NexusPermissionError):
            attack()
    # A denial looks the same whether or not the path exists: names cannot be probed.
    with pytest.raises(nexus.NexusPermissionError) as existing:
        bob.read(f"{ACME}/shared/project-plan.md")
    with pytest.raises(nexus.NexusPermissionError) as missing:
        bob.read(f"{ACME}/shared/nothing.md")
    assert str(existing.value).replace("project-plan", "X") == \
        str(missing.value).replace("nothing", "X")
    assert admin.read(f"{ACME}/shared/project-plan.md") == b"CONFIDENTIAL - Acme"
    assert not admin.exists(f"{BETA}/stolen.md")


def test_beta_user_cannot_grant_itself_acme(guide, admin: NexusClient) -> None:
    bob = guide["bob"]
    for kwargs in ({}, {"tenant_id": "beta"}, {"tenant_id": "acme"}):
        with pytest.raises(nexus.NexusPermissionError):
            bob.rebac_create(("user", "bob"), "owner", ("file", ACME), **kwargs)
    with pytest.raises(nexus.NexusPermissionError):
        bob.rebac_create(("tenant", "beta"), "can_read", ("file", ACME))
    with pytest.raises(nexus.NexusPermissionError):
        bob.rebac_list_tuples(object=("file", ACME))
    with pytest.raises(nexus.NexusPermissionError):
        bob.rebac_list_tuples(tenant_id="acme")
    with pytest.raises(nexus.NexusPermissionError):
        bob.rebac_check(("user", "alice"), "can_read", ("file", ACME))
    acme_tuple = admin.rebac_list_tuples(subject=("user", "alice"), tenant_id="acme")[0]
    with pytest.raises(nexus.NexusPermissionError):
        bob.rebac_delete(acme_tuple["tuple_id"])
    assert admin.rebac_list_tuples(subject=("user", "alice"), tenant_id="acme") == [acme_tuple]
    # Bob's own listing holds only beta's tuples.
    own = bob.rebac_list_tuples()
    assert own and all(t["tenant_id"] == "beta" for t in own)
    with pytest.raises(nexus.NexusPermissionError):
        bob.read(f"{ACME}/shared")


def test_same_user_id_in_two_tenants_are_two_users(guide, tenant_user) -> None:
    guide["alice"].write(f"{ACME}/shared/plan.md", b"acme")
    beta_alice = tenant_user("beta", "alice")
    with pytest.raises(nexus.NexusPermissionError):
        beta_alice.read(f"{ACME}/shared/plan.md")
    with pytest.raises(nexus.NexusPermissionError):
        beta_alice.list(ACME)


def test_editor_writes_shared_but_not_others_folders(guide) -> None:
    alice, charlie = guide["alice"], guide["charlie"]
    alice.write(f"{ACME}/users/alice/notes.md", b"private")
    charlie.write(f"{ACME}/shared/new/deep/file.md", b"by charlie")  # new files inherit
    charlie.write(f"{ACME}/users/charlie/todo.md", b"mine")
    assert charlie.read(f"{ACME}/shared/new/deep/file.md") == b"by charlie"
    for attack in (lambda: charlie.read(f"{ACME}/users/alice/notes.md"),
                   lambda: charlie.write(f"{ACME}/users/alice/notes.md", b"x"),
                   lambda: charlie.write(f"{ACME}/uploads/x", b"x"),
                   lambda: charlie.list(f"{ACME}/users")):
        with pytest.raises(nexus.NexusPermissionError):
            attack()


def test_viewer_reads_new_files_but_cannot_write(guide) -> None:
    alice, diana = guide["alice"], guide["diana"]
    alice.write(f"{ACME}/shared/later.md", b"created after the grant")
    assert diana.read(f"{ACME}/shared/later.md") == b"created after the grant"
    assert [e["name"] for e in diana.list(f"{ACME}/shared")] == ["later.md"]
    with pytest.raises(nexus.NexusPermissionError):
        diana.write(f"{ACME}/shared/later.md", b"overwrite")
    with pytest.raises(nexus.NexusPermissionError):
        diana.delete(f"{ACME}/shared/later.md")
    assert alice.read(f"{ACME}/shared/later.md") == b"created after the grant"


def test_only_owners_grant(guide) -> None:
    alice, charlie, diana = guide["alice"], guide["charlie"], guide["diana"]
    with pytest.raises(nexus.NexusPermissionError):
        charlie.rebac_create(("user", "diana"), "can_write", ("file", f"{ACME}/shared"))
    with pytest.raises(nexus.NexusPermissionError):
        diana.rebac_create(("user", "diana"), "can_write", ("file", f"{ACME}/shared"))
    alice.rebac_create(("user", "diana"), "can_write", ("file", f"{ACME}/shared/drafts"))
    diana.write(f"{ACME}/shared/drafts/d.md", b"ok")
    # An owner of a sub-folder may grant there, and only there.
    charlie.rebac_create(("user", "diana"), "can_read", ("file", f"{ACME}/users/charlie"))
    with pytest.raises(nexus.NexusPermissionError):
        charlie.rebac_create(("user", "charlie"), "owner", ("file", ACME))


def test_revoke_takes_effect_on_the_next_call(guide, admin: NexusClient) -> None:
    guide["alice"].write(f"{ACME}/shared/doc.md", b"doc")
    diana = guide["diana"]
    assert diana.read(f"{ACME}/shared/doc.md") == b"doc"
    assert admin.rebac_delete(subject=("user", "diana"), relation="can_read",
                              object=("file", f"{ACME}/shared"), tenant_id="acme")
    with pytest.raises(nexus.NexusPermissionError):
        diana.read(f"{ACME}/shared/doc.md")
    tid = admin.rebac_create(("user", "diana"), "can_read", ("file", f"{ACME}/shared"))
    assert diana.read(f"{ACME}/shared/doc.md") == b"doc"
    assert admin.rebac_delete(tid)
    with pytest.raises(nexus.NexusPermissionError):
        diana.read(f"{ACME}/shared/doc.md")
    assert not admin.rebac_delete(tid)


def test_expired_tuple_grants_nothing(guide, admin: NexusClient, tenant_user) -> None:
    guide["alice"].write(f"{ACME}/shared/doc.md", b"doc")
    erin = tenant_user("acme", "erin")
    admin.rebac_create(("user", "erin"), "can_read", ("file", f"{ACME}/shared"),
                       expires_at=time.time() + 0.6)
    assert erin.read(f"{ACME}/shared/doc.md") == b"doc"  # also warms the check cache
    time.sleep(0.7)
    with pytest.raises(nexus.NexusPermissionError):
        erin.read(f"{ACME}/shared/doc.md")
    assert admin.rebac_list_tuples(subject=("user", "erin"), tenant_id="acme") == []
    assert len(admin.rebac_list_tuples(subject=("user", "erin"), tenant_id="acme",
                                       include_expired=True)) == 1
    with pytest.raises(nexus.InvalidArgumentError):
        admin.rebac_create(("user", "erin"), "can_read", ("file", ACME),
                           expires_at=time.time() - 5)


def test_invalid_tuples_are_rejected(guide, admin: NexusClient) -> None:
    cases = [
        (("user", "x"), "can_fly", ("file", ACME)),        # unknown relation
        (("document", "x"), "can_read", ("file", ACME)),   # unknown subject type
        (("user", "x"), "member", ("file", ACME)),         # relation of another type
        (("user", "x"), "parent", ("file", ACME)),          # subject type not allowed
        (("user", "x"), "can_read", ("file", "/tenants/acme/../beta")),
        (("user", "x"), "can_read", ("file", "/exports/x")),  # outside tenants
        (("user", "x"), "can_read", "not-a-pair"),
    ]
    for subject, relation, obj in cases:
        with pytest.raises(nexus.InvalidArgumentError):
            admin.rebac_create(subject, relation, obj)
    assert admin.rebac_list_tuples(subject=("user", "x"), tenant_id="acme") == []
    # For the administrator a disagreeing tenant_id is a hint: the tuple lives with its
    # object (the guide's Step 4 passes the sharing tenant's id).
    admin.rebac_create(("user", "x"), "can_read", ("file", ACME), tenant_id="beta")
    assert [t["tenant_id"] for t in admin.rebac_list_tuples(subject=("user", "x"),
                                                            tenant_id="acme")] == ["acme"]
    assert admin.rebac_list_tuples(subject=("user", "x"), tenant_id="beta") == []


def test_wildcard_tenant_and_group_subjects(guide, admin: NexusClient, tenant_user) -> None:
    admin.write(f"{ACME}/public/hello.md", b"hi")
    admin.write(f"{ACME}/all-hands/agenda.md", b"agenda")
    admin.write(f"{ACME}/eng/design.md", b"design")
    admin.rebac_create(("user", "*"), "can_read", ("file", f"{ACME}/public"))
    admin.rebac_create(("tenant", "acme"), "can_read", ("file", f"{ACME}/all-hands"))
    admin.rebac_create(("user", "frank"), "member", ("group", "eng"), tenant_id="acme")
    admin.rebac_create(("group", "eng", "member"), "can_write", ("file", f"{ACME}/eng"))
    frank, gina, bob = tenant_user("acme", "frank"), tenant_user("acme", "gina"), guide["bob"]
    assert gina.read(f"{ACME}/public/hello.md") == b"hi"
    assert gina.read(f"{ACME}/all-hands/agenda.md") == b"agenda"
    frank.write(f"{ACME}/eng/design.md", b"v2")
    with pytest.raises(nexus.NexusPermissionError):
        gina.write(f"{ACME}/eng/design.md", b"v3")
    # user:* and tenant:acme mean acme's users, never another tenant's.
    for attack in (lambda: bob.read(f"{ACME}/public/hello.md"),
                   lambda: bob.read(f"{ACME}/all-hands/agenda.md")):
        with pytest.raises(nexus.NexusPermissionError):
            attack()


def test_check_expand_and_list_apis(guide, admin: NexusClient) -> None:
    guide["alice"].write(f"{ACME}/shared/doc.md", b"doc")
    doc = ("file", f"{ACME}/shared/doc.md")
    assert admin.rebac_check(("user", "diana"), "can_read", doc)
    assert not admin.rebac_check(("user", "diana"), "can_write", doc)
    assert admin.rebac_check(("user", "charlie"), "can_write", doc)
    assert not admin.rebac_check(("user", "bob"), "can_read", doc)
    assert admin.rebac_check_batch([(("user", "alice"), "owner", doc),
                                    (("user", "diana"), "owner", doc)]) == [True, False]
    assert guide["alice"].rebac_check(("user", "diana"), "can_read", doc)
    readers = admin.rebac_list_subjects(doc, "can_read", "user")
    assert {"alice", "charlie", "diana"} <= {s[1] for s in readers}
    assert "bob" not in {s[1] for s in readers}
    writable = admin.rebac_list_objects(("user", "charlie"), "can_write", "file",
                                        tenant_id="acme")
    assert f"{ACME}/shared/doc.md" in writable and f"{ACME}/users/charlie" in writable
    assert f"{ACME}/users" not in writable
    tree = admin.rebac_expand("can_read", doc)
    assert tree["name"] == f"file:{ACME}/shared/doc.md#can_read"
    token = admin.rebac_revision(tenant_id="acme")
    assert admin.rebac_check(("user", "diana"), "can_read", doc, at_least=token)


def test_guide_troubleshooting_shows_only_own_tenant(guide) -> None:
    alice = guide["alice"]
    permissions = alice.rebac_list_tuples(subject=("user", "alice"))
    assert permissions
    for perm in permissions:
        assert perm["object_id"].startswith("/tenants/acme")
        assert {"tuple_id", "tenant_id", "subject_type", "subject_id", "subject_relation",
                "relation", "object_type", "object_id", "expires_at", "created_at"} <= set(perm)


def test_grants_do_not_outlive_their_files(guide, admin: NexusClient) -> None:
    admin.write(f"{ACME}/shared/tmp/f.md", b"x")
    admin.rebac_create(("user", "gina"), "can_read", ("file", f"{ACME}/shared/tmp/f.md"))
    admin.delete(f"{ACME}/shared/tmp/f.md")
    assert admin.rebac_list_tuples(object=("file", f"{ACME}/shared/tmp/f.md")) == []
    admin.write(f"{ACME}/d/f.md", b"x")
    admin.rebac_create(("user", "gina"), "can_read", ("file", f"{ACME}/d"))
    admin.rename(f"{ACME}/d", f"{ACME}/e")
    assert [t["object_id"] for t in admin.rebac_list_tuples(subject=("user", "gina"),
                                                            tenant_id="acme")] == [f"{ACME}/e"]


def test_deleted_tenant_cannot_be_resurrected(guide, admin: NexusClient) -> None:
    alice = guide["alice"]
    alice.write(f"{ACME}/shared/old.md", b"old")
    admin.rmdir(ACME, recursive=True)
    assert admin.rebac_list_tuples(tenant_id="acme") == []
    admin.mkdir(f"{ACME}/shared")
    admin.write(f"{ACME}/shared/new.md", b"new tenant's data")
    # Over HTTP the old key itself is gone (AuthenticationError); in-process the old
    # principal holds no tuple in the new tenant (NexusPermissionError).
    refused = (nexus.NexusPermissionError, nexus.AuthenticationError)
    with pytest.raises(refused):
        alice.read(f"{ACME}/shared/new.md")
    with pytest.raises(refused):
        alice.list(ACME)
