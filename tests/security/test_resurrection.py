"""The resurrection matrix: a re-created tenant id inherits nothing from its earlier life.

For every kind of reference a tenant (or one of its users) can have in *another* tenant —
a direct grant to a foreign user, a ``tenant:<id>`` subject, a ``tenant:<id>#member``
userset, a foreign user in the other tenant's group, a live share, a share restored by
``import_tenant``, an API key, the share alias — the referenced tenant is deleted and its
id re-created for a new customer with users of the same names. No old grant may reach
anything: reads, stats, listings, alias paths, permission checks, tuple listings and the
old keys all come back empty or refused. Runs on SQLite and PostgreSQL, embedded (keys
authenticated like the server does) and over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import nexus
from nexus.client import NexusClient

DOC = "/tenants/acme/shared/plan.txt"
BODY = b"acme's plan"


def _grant_direct(admin: NexusClient, alice: NexusClient) -> None:
    admin.rebac_create(("user", "beta/bob"), "can_read", ("file", DOC))


def _grant_tenant(admin: NexusClient, alice: NexusClient) -> None:
    admin.rebac_create(("tenant", "beta"), "can_read", ("file", DOC))


def _grant_tenant_members(admin: NexusClient, alice: NexusClient) -> None:
    admin.rebac_create(("tenant", "beta", "member"), "can_read", ("file", DOC))


def _grant_group(admin: NexusClient, alice: NexusClient) -> None:
    admin.rebac_create(("user", "beta/bob"), "member", ("group", "partners"), tenant_id="acme")
    admin.rebac_create(("group", "partners", "member"), "can_read", ("file", DOC))


def _grant_share(admin: NexusClient, alice: NexusClient) -> None:
    alice.create_share(DOC, "beta", permission="can_read")


def _grant_imported_share(admin: NexusClient, alice: NexusClient) -> None:
    # The share is made, then acme travels through export/import (as the live tenant
    # acme, re-created from its archive): whatever import restores must stay bound to the
    # beta that existed when it ran.
    alice.create_share(DOC, "beta", permission="can_read")
    archive = b"".join(admin.read_stream(admin.export_tenant("acme")["path"]))
    admin.delete_tenant("acme", confirm=True)
    admin.import_tenant(archive)
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    if not _old_bob_reads(admin):
        # An import that drops cross-tenant grants is also safe; re-share so the
        # precondition (old bob reads) holds and the deletion below is still tested.
        _grant_share(admin, alice)


REFERENCES: dict[str, Callable[[NexusClient, NexusClient], None]] = {
    "direct-tuple": _grant_direct,
    "tenant-subject": _grant_tenant,
    "tenant-member-userset": _grant_tenant_members,
    "foreign-user-in-group": _grant_group,
    "share": _grant_share,
    "share-restored-by-import": _grant_imported_share,
}

_WORLD: dict[str, object] = {}


def _old_bob_reads(admin: NexusClient) -> bool:
    bob = _WORLD["old_bob"]
    assert isinstance(bob, NexusClient)
    try:
        return bob.read(DOC) == BODY
    except nexus.NexusError:
        return False


@pytest.fixture
def world(service, connect_as, admin: NexusClient):  # noqa: ANN001, ANN201
    def key(tenant: str, user: str) -> str:
        return str(admin._call_rpc("admin_create_key", {
            "user_id": user, "name": user, "tenant_id": tenant})["api_key"])

    admin.create_tenant("acme", plan="pro")
    admin.create_tenant("beta", plan="pro")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.rebac_create(("user", "bob"), "owner", ("file", "/tenants/beta"))
    admin.write(DOC, BODY)
    _WORLD.clear()
    _WORLD["old_bob_key"] = key("beta", "bob")
    _WORLD["old_bob"] = connect_as(api_key=_WORLD["old_bob_key"])
    alice = connect_as(api_key=key("acme", "alice"))

    def recreate_beta() -> dict[str, NexusClient]:
        admin.delete_tenant("beta", confirm=True)
        admin.create_tenant("beta", plan="pro")  # a new customer who picked the same id
        admin.rebac_create(("user", "bob"), "owner", ("file", "/tenants/beta"))
        return {"bob": connect_as(api_key=key("beta", "bob")),
                "bea": connect_as(api_key=key("beta", "bea"))}

    return alice, recreate_beta


def _assert_reaches_nothing(client: NexusClient) -> None:
    for attempt in (lambda: client.read(DOC), lambda: client.stat(DOC),
                    lambda: client.list("/tenants/acme/shared"),
                    lambda: client.write(DOC, b"overwritten"),
                    lambda: client.read("/tenants/beta/shared/from-acme/plan.txt")):
        with pytest.raises((nexus.NexusPermissionError, nexus.NexusFileNotFoundError)):
            attempt()
    try:
        assert client.exists(DOC) is False
    except nexus.NexusPermissionError:
        pass
    try:
        alias_dir = client.list("/tenants/beta/shared")
    except (nexus.NexusFileNotFoundError, nexus.NexusPermissionError):
        alias_dir = []
    assert not [e for e in alias_dir if "from-acme" in str(e)]


@pytest.mark.parametrize("kind", list(REFERENCES))
def test_a_recreated_tenant_inherits_no_reference(kind: str, world, admin: NexusClient,
                                                  connect_as) -> None:  # noqa: ANN001
    alice, recreate_beta = world
    REFERENCES[kind](admin, alice)
    assert _old_bob_reads(admin), "precondition: the reference grants the old beta's bob"

    new = recreate_beta()

    for client in new.values():
        _assert_reaches_nothing(client)
    assert admin.read(DOC) == BODY  # nothing was overwritten through an old grant
    # The permission API agrees: no subject naming beta has anything on acme's file …
    for subject in (("user", "beta/bob"), ("tenant", "beta"), ("tenant", "beta", "member")):
        assert admin.rebac_check(subject, "can_read", ("file", DOC)) is False
    # … no stored tuple of acme still names beta, and no share into beta is listed.
    assert [t for t in admin.rebac_list_tuples(tenant_id="acme")
            if "beta" in str(t.get("subject_id"))] == []
    assert admin.list_shares("beta", direction="incoming") == []
    assert admin.rebac_list_objects(("user", "beta/bob"), "can_read", "file",
                                    tenant_id="acme") == []
    # The old key died with its tenant.
    with pytest.raises(nexus.AuthenticationError):
        connect_as(api_key=_WORLD["old_bob_key"]).stat("/tenants/beta")


def test_new_grants_to_the_recreated_tenant_work(world, admin: NexusClient) -> None:
    """The control: the matrix denies because the references are dead, not because
    cross-tenant grants stopped working."""
    alice, recreate_beta = world
    new = recreate_beta()
    alice.create_share(DOC, "beta", permission="can_read")
    assert new["bea"].read(DOC) == BODY
    admin.rebac_create(("user", "beta/bob"), "can_write", ("file", DOC))
    new["bob"].write(DOC, b"new beta's edit")
    assert admin.read(DOC) == b"new beta's edit"


@pytest.mark.parametrize("subject", [("tenant", "ghost"), ("tenant", "ghost", "member"),
                                     ("user", "ghost/bob")])
def test_grants_to_tenants_that_do_not_exist_are_refused(subject, world,
                                                          admin: NexusClient) -> None:
    with pytest.raises(nexus.NexusFileNotFoundError, match="ghost"):
        admin.rebac_create(subject, "can_read", ("file", DOC))
    assert admin.rebac_list_tuples(tenant_id="acme", object=("file", DOC)) == []


def test_a_grant_never_creates_a_tenant(world, admin: NexusClient) -> None:
    with pytest.raises(nexus.NexusFileNotFoundError, match="ghost"):
        admin.rebac_create(("user", "eve"), "owner", ("file", "/tenants/ghost/doc"))
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.get_tenant("ghost")
    assert "ghost" not in [t["tenant_id"] for t in admin.list_tenants()["tenants"]]


@pytest.mark.parametrize("forged", [("user", "beta~0123456789abcdef/bob"),
                                    ("tenant", "beta~0123456789abcdef")])
def test_clients_cannot_name_an_incarnation(forged, world, admin: NexusClient) -> None:
    with pytest.raises(nexus.NexusError):
        admin.rebac_create(forged, "can_read", ("file", DOC))


def test_a_reference_the_clean_up_missed_is_still_dead(world, service,
                                                       admin: NexusClient) -> None:
    """By construction, not by clean-up: a tuple naming the old incarnation that survived
    the deletion (written by hand here, as a racing grant or an old backup could) grants
    the new tenant's users nothing."""
    from nexus.authz import RelationTuple
    from nexus.store import TenantRepository
    from nexus.store.tuples import TupleRepository

    alice, recreate_beta = world
    with service.db.read() as conn:
        old = TenantRepository(conn).incarnation("beta")
    new = recreate_beta()
    with service.db.write() as conn:
        repo = TupleRepository(conn)
        for subject in (("user", f"beta~{old}/bob", None), ("tenant", f"beta~{old}", "member")):
            repo.write("acme", RelationTuple("file", DOC, "can_read", *subject), now=0.0,
                       created_by="backup")
        revision = repo.bump_revision("acme")
    service.permissions._revisions.advanced("acme", revision)  # no cached answer survives
    for client in new.values():
        _assert_reaches_nothing(client)
