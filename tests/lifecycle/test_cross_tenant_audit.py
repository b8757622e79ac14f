"""Cross-tenant audit: an operation that involves two tenants — a principal of one acting
on the other's paths through a share (or its alias), a copy or rename between them — is
recorded in both tenants' logs, in one transaction, each event naming the other tenant."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import nexus
from nexus.client import NexusClient
from tests.lifecycle.audit_events import all_events

OUTBOX = "/tenants/acme/shared/outbox"
DOC = f"{OUTBOX}/proposal.pdf"
ALIAS = "/tenants/beta/shared/from-acme/outbox"
BROWSE = "cross-tenant path=acme principal=beta"


@pytest.fixture
def parties(admin: NexusClient, tenant_user) -> dict[str, NexusClient]:
    for tenant, owner in (("acme", "alice"), ("beta", "bob"), ("corp", "cyd")):
        admin.create_tenant(tenant, plan="pro")
        admin.rebac_create(("user", owner), "owner", ("file", f"/tenants/{tenant}"))
    admin.write(DOC, b"%PDF proposal")
    alice = tenant_user("acme", "alice")
    alice.create_share(OUTBOX, "beta", permission="can_write")
    return {"alice": alice, "bob": tenant_user("beta", "bob"),
            "cyd": tenant_user("corp", "cyd")}


def _seen(admin: NexusClient, tenant: str, user: str = "bob") -> list[tuple]:
    return [(e["action"], e["target"], e["result"], e["detail"])
            for e in all_events(admin, tenant, user=user)]


def _in_both(admin: NexusClient, event: tuple) -> None:
    """``event`` (action, target, result, detail) is in acme's and in beta's log, as
    often in each, with the same time, key, request and client in both."""
    same = ("at", "key_id", "request_id", "client")
    twins = []
    for tenant in ("acme", "beta"):
        matches = [e for e in all_events(admin, tenant, user="bob")
                   if (e["action"], e["target"], e["result"], e["detail"]) == event]
        assert matches, (tenant, event, _seen(admin, tenant))
        twins.append([[e[k] for k in same] for e in matches])
    assert twins[0] == twins[1]


def _verified(admin: NexusClient, *tenants: str) -> None:
    for tenant in tenants:
        report = admin.audit_verify(tenant)
        assert report["ok"], report


def test_copy_out_of_the_source_is_in_both_logs(parties, admin: NexusClient) -> None:
    bob = parties["bob"]
    bob.copy(DOC, "/tenants/beta/inbox/proposal.pdf")
    _in_both(admin, ("copy", f"{DOC} -> /tenants/beta/inbox/proposal.pdf", "ok",
                     "cross-tenant src=acme dst=beta principal=beta"))
    # A copy inside one tenant stays in that tenant's log alone, as before.
    bob.copy("/tenants/beta/inbox/proposal.pdf", "/tenants/beta/inbox/again.pdf")
    local = ("copy", "/tenants/beta/inbox/proposal.pdf -> /tenants/beta/inbox/again.pdf",
             "ok", None)
    assert local in _seen(admin, "beta") and local not in _seen(admin, "acme")
    _verified(admin, "acme", "beta")


def test_rename_into_and_out_of_the_source_tree(parties, admin: NexusClient) -> None:
    bob = parties["bob"]
    bob.write("/tenants/beta/draft.md", b"from beta")
    bob.rename("/tenants/beta/draft.md", f"{OUTBOX}/draft.md")
    _in_both(admin, ("rename", f"/tenants/beta/draft.md -> {OUTBOX}/draft.md", "ok",
                     "cross-tenant src=beta dst=acme principal=beta"))
    bob.rename(f"{OUTBOX}/draft.md", f"{OUTBOX}/final.md")  # within acme, by beta's bob
    _in_both(admin, ("rename", f"{OUTBOX}/draft.md -> {OUTBOX}/final.md", "ok",
                     "cross-tenant src=acme dst=acme principal=beta"))
    bob.rename(f"{OUTBOX}/final.md", "/tenants/beta/final.md")
    _in_both(admin, ("rename", f"{OUTBOX}/final.md -> /tenants/beta/final.md", "ok",
                     "cross-tenant src=acme dst=beta principal=beta"))
    assert bob.read("/tenants/beta/final.md") == b"from beta"
    _verified(admin, "acme", "beta")


def test_every_access_through_a_share_is_in_both_logs(parties, admin: NexusClient) -> None:
    bob, alice = parties["bob"], parties["alice"]
    note = f"{OUTBOX}/note.md"
    bob.write(note, b"hello")
    bob.append(note, b" acme")
    assert bob.read(note) == b"hello acme"
    assert b"".join(bob.read_stream(DOC)) == b"%PDF proposal"
    assert bob.stat(note)["size"] == 10
    assert bob.exists(note)
    assert {e["path"] for e in bob.list(OUTBOX)} == {DOC, note}
    bob.delete(note)
    for action, target in (("write", note), ("append", note), ("read", note),
                           ("read", DOC), ("stat", note), ("list", OUTBOX),
                           ("delete", note)):
        _in_both(admin, (action, target, "ok", BROWSE))
    # alice's own accesses are acme's business only, as before.
    alice.read(DOC)
    assert ("read", DOC, "ok", None) in _seen(admin, "acme", user="alice")
    assert all_events(admin, "beta", user="alice") == []
    _verified(admin, "acme", "beta")


def test_accesses_through_the_alias_are_in_both_logs(parties, admin: NexusClient) -> None:
    bob = parties["bob"]
    assert bob.read(f"{ALIAS}/proposal.pdf") == b"%PDF proposal"
    bob.write(f"{ALIAS}/reply.md", b"reply")
    assert bob.stat(f"{ALIAS}/reply.md")["path"] == f"{OUTBOX}/reply.md"
    # The events name the source path the alias stands for.
    for action, target in (("read", DOC), ("write", f"{OUTBOX}/reply.md"),
                           ("stat", f"{OUTBOX}/reply.md")):
        _in_both(admin, (action, target, "ok", BROWSE))
    # delete does not resolve the alias: a missing path of beta's, recorded nowhere.
    with pytest.raises(nexus.NexusFileNotFoundError):
        bob.delete(f"{ALIAS}/reply.md")
    for tenant in ("acme", "beta"):
        assert not [e for e in all_events(admin, tenant, action="delete")]
    assert admin.read(f"{OUTBOX}/reply.md") == b"reply"
    _verified(admin, "acme", "beta")


def test_refused_operations_write_no_success_event(parties, admin: NexusClient) -> None:
    alice, bob, cyd = parties["alice"], parties["bob"], parties["cyd"]
    alice.write("/tenants/acme/private.md", b"secret")
    before = {t: len(all_events(admin, t)) for t in ("acme", "beta", "corp")}
    with pytest.raises(nexus.NexusPermissionError):
        bob.copy("/tenants/acme/private.md", "/tenants/beta/stolen.md")
    with pytest.raises(nexus.NexusPermissionError):
        bob.rename("/tenants/beta/x.md", "/tenants/acme/x.md")
    with pytest.raises(nexus.NexusPermissionError):
        cyd.read(DOC)
    with pytest.raises(nexus.NexusPermissionError):
        cyd.copy(DOC, "/tenants/corp/proposal.pdf")
    share = alice.list_shares("acme")[0]
    alice.revoke_share(share["share_id"])
    with pytest.raises(nexus.NexusPermissionError):
        bob.write(f"{OUTBOX}/late.md", b"too late")
    with pytest.raises(nexus.NexusFileNotFoundError):
        bob.read(f"{ALIAS}/proposal.pdf")  # no share left: a missing path of beta's
    for tenant in ("acme", "beta", "corp"):
        new = all_events(admin, tenant)[before[tenant]:]
        assert [e for e in new if e["result"] == "ok" and e["user_id"] in ("bob", "cyd")] \
            == [], tenant
    # The refusals are on record in both tenants, each naming the other.
    denied = [(e["action"], e["target"], e["detail"])
              for e in all_events(admin, "acme") if e["result"] == "denied"]
    assert ("deny.can_read", "/tenants/acme/private.md",
            "cross-tenant path=acme principal=beta") in denied
    assert ("deny.can_read", DOC, "cross-tenant path=acme principal=corp") in denied
    assert ("deny.can_write", f"{OUTBOX}/late.md", BROWSE) in denied
    assert ("deny.can_write", f"{OUTBOX}/late.md", "denied", BROWSE) in _seen(admin, "beta")
    assert ("deny.can_read", DOC, "denied", "cross-tenant path=acme principal=corp") \
        in _seen(admin, "corp", user="cyd")
    _verified(admin, "acme", "beta", "corp")


def test_each_log_follows_its_own_read_setting(parties, admin: NexusClient) -> None:
    bob = parties["bob"]
    admin.update_tenant("acme", settings={"audit_reads": False})
    bob.read(DOC)
    assert [e for e in all_events(admin, "acme", action="read")] == []
    assert ("read", DOC, "ok", BROWSE) in _seen(admin, "beta")
    bob.write(f"{OUTBOX}/w.md", b"w")  # changes are always recorded
    _in_both(admin, ("write", f"{OUTBOX}/w.md", "ok", BROWSE))
    _verified(admin, "acme", "beta")


def test_administrator_events_cross_only_with_the_data(parties, admin: NexusClient) -> None:
    """The system administrator has no home tenant: its read stays in the file's log,
    but its copy from acme into beta is in both (acme sees its file leave)."""
    admin.copy(DOC, "/tenants/beta/copied.pdf")
    admin.read(DOC)
    bob = parties["bob"]
    bob.read(DOC)  # and a cross-tenant event, so this fails on code that records none
    _in_both(admin, ("read", DOC, "ok", BROWSE))
    copies = [(t, e["target"], e["detail"]) for t in ("acme", "beta")
              for e in all_events(admin, t, action="copy")]
    both = "admin bypass; cross-tenant src=acme dst=beta"
    assert copies == [("acme", f"{DOC} -> /tenants/beta/copied.pdf", both),
                      ("beta", f"{DOC} -> /tenants/beta/copied.pdf", both)]
    reads = [(t, e["user_id"]) for t in ("acme", "beta")
             for e in all_events(admin, t, action="read") if e["user_id"] != "bob"]
    assert all(t == "acme" for t, _ in reads)


def test_crossing_copies_in_both_directions_at_once(parties, admin: NexusClient) -> None:
    alice, bob = parties["alice"], parties["bob"]
    bob.write("/tenants/beta/outbox/b.md", b"b")
    bob.create_share("/tenants/beta/outbox", "acme", permission="can_write")

    def work(i: int) -> None:
        if i % 2:
            bob.copy(DOC, f"/tenants/beta/in/{i}.pdf")
        else:
            alice.copy("/tenants/beta/outbox/b.md", f"/tenants/acme/in/{i}.md")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(16)))
    for tenant in ("acme", "beta"):
        copies = [e for e in all_events(admin, tenant, action="copy")]
        assert len(copies) == 16, tenant
        events = all_events(admin, tenant)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    _verified(admin, "acme", "beta")
