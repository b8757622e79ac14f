"""Users as a quota (``max_users``) and delegated key administration by a tenant's
administrator (an ``owner`` of ``/tenants/<id>``) — never beyond its own tenant."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import nexus
from nexus.client import NexusClient
from nexus.service import NexusService

#: The client suite: every test here runs through the sync and the async client.
pytestmark = pytest.mark.both_clients

#: A fixture that makes clients (``tenant_user``, ``connect_as``).
Factory = Callable[..., NexusClient]


def _key(client: NexusClient, user: str, tenant: str | None = "acme",
         **extra: Any) -> dict[str, Any]:
    return client._call_rpc("admin_create_key", {"user_id": user, "name": f"{user} key",
                                                 "subject_type": "user", "tenant_id": tenant,
                                                 "is_admin": False, **extra})


def _users(admin: NexusClient, tenant: str) -> int:
    return int(admin.get_tenant(tenant)["usage"]["users"])


def test_sixth_user_of_a_free_tenant_is_refused(admin: NexusClient) -> None:
    admin.create_tenant("acme", plan="free")
    for i in range(5):
        _key(admin, f"user{i}")
    assert _users(admin, "acme") == 5
    with pytest.raises(nexus.QuotaExceededError) as info:
        _key(admin, "user5")
    assert info.value.details["resource"] == "users"
    assert info.value.details["limit"] == 5 and info.value.details["current"] == 5
    assert "users" in str(info.value) and "5" in str(info.value)
    # The refused user got no key and was not created.
    assert not admin._call_rpc("admin_list_keys", {"tenant_id": "acme", "user_id": "user5"})
    assert _users(admin, "acme") == 5
    # More keys for existing users are fine.
    second = _key(admin, "user0")
    assert second["user_id"] == "user0"
    assert len(admin._call_rpc("admin_list_keys", {"tenant_id": "acme",
                                                   "user_id": "user0"})) == 2
    assert _users(admin, "acme") == 5
    # A user named like one of another tenant is a different user (and another quota).
    admin.create_tenant("beta", plan="free")
    _key(admin, "user5", tenant="beta")
    assert _users(admin, "beta") == 1
    # Raising the limit lets the sixth in at once.
    admin.update_tenant("acme", limits={"max_users": 6})
    _key(admin, "user5")
    assert _users(admin, "acme") == 6


def test_revoking_keys_does_not_free_a_user_seat(admin: NexusClient) -> None:
    admin.create_tenant("acme", plan="free", max_users=1)
    created = _key(admin, "only")
    admin._call_rpc("admin_revoke_key", {"key_id": created["key_id"]})
    assert _users(admin, "acme") == 1
    _key(admin, "only")  # the same user again: no new seat
    with pytest.raises(nexus.QuotaExceededError):
        _key(admin, "other")


def test_concurrent_first_keys_never_exceed_max_users(admin: NexusClient,
                                                      service: NexusService) -> None:
    admin.create_tenant("acme", plan="free")

    def one(i: int) -> str | None:
        user = f"u{i % 12}"  # 12 distinct users, each asked for twice
        try:
            _key(admin, user)
        except nexus.QuotaExceededError:
            return None
        return user

    with ThreadPoolExecutor(max_workers=16) as pool:
        winners = {u for u in pool.map(one, range(24)) if u is not None}
    assert len(winners) == 5
    assert _users(admin, "acme") == 5
    keys = admin._call_rpc("admin_list_keys", {"tenant_id": "acme"})
    assert {k["user_id"] for k in keys} == winners


# -- delegated administration -----------------------------------------------------------


@pytest.fixture
def tenants(admin: NexusClient, connect_as: Factory
            ) -> dict[str, Any]:
    """acme (alice owns it, carol only writes its shared folder) and beta (bob owns it)."""
    admin.create_tenant("acme", plan="free")
    admin.create_tenant("beta", plan="free")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.rebac_create(("user", "carol"), "can_write", ("file", "/tenants/acme/shared"))
    admin.rebac_create(("user", "carol"), "owner", ("file", "/tenants/acme/users/carol"))
    admin.rebac_create(("user", "bob"), "owner", ("file", "/tenants/beta"))
    keys = {"alice": _key(admin, "alice"), "carol": _key(admin, "carol"),
            "bob": _key(admin, "bob", tenant="beta"),
            "beta-user": _key(admin, "erin", tenant="beta"),
            "admin": admin._call_rpc("admin_create_key", {"user_id": "root2", "name": "r",
                                                          "is_admin": True})}
    return {"keys": keys,
            "alice": connect_as(api_key=keys["alice"]["api_key"]),
            "carol": connect_as(api_key=keys["carol"]["api_key"]),
            "bob": connect_as(api_key=keys["bob"]["api_key"])}


def test_tenant_admin_manages_its_own_tenants_keys(admin: NexusClient, tenants: dict[str, Any],
                                                   connect_as: Factory) -> None:
    alice: NexusClient = tenants["alice"]
    dave = _key(alice, "dave")
    assert dave["tenant_id"] == "acme" and dave["user_id"] == "dave"
    assert dave["is_admin"] is False
    dave_client = connect_as(api_key=dave["api_key"])
    with pytest.raises(nexus.NexusPermissionError):
        dave_client.read("/tenants/acme/shared/nothing-granted")
    listed = alice._call_rpc("admin_list_keys", {"tenant_id": "acme"})
    assert {k["user_id"] for k in listed} == {"alice", "carol", "dave"}
    assert all("api_key" not in k and "secret_hash" not in k for k in listed)
    assert [k["user_id"] for k in alice._call_rpc(
        "admin_list_keys", {"tenant_id": "acme", "user_id": "dave"})] == ["dave"]
    assert alice._call_rpc("admin_get_key", {"key_id": dave["key_id"]})["user_id"] == "dave"
    alice._call_rpc("admin_revoke_key", {"key_id": dave["key_id"]})
    with pytest.raises(nexus.AuthenticationError, match="revoked"):
        dave_client.exists("/tenants/acme/shared")
    # Usage and the bill of its own tenant.
    assert alice.get_usage("acme")["usage"]["users"] == 3
    assert alice.billing_preview("acme")["tenant_id"] == "acme"
    assert alice.get_tenant("acme")["tenant_id"] == "acme"
    # The tenant's user limit binds a tenant administrator too.
    _key(alice, "frank")
    _key(alice, "grace")
    with pytest.raises(nexus.QuotaExceededError):
        _key(alice, "heidi")


def test_tenant_admin_key_named_admin_is_no_system_admin(tenants: dict[str, Any],
                                                         connect_as: Factory) -> None:
    fake = _key(tenants["alice"], "admin")
    client = connect_as(api_key=fake["api_key"])
    with pytest.raises(nexus.NexusPermissionError):
        client.list_tenants()
    with pytest.raises(nexus.NexusPermissionError):
        client.read("/tenants/beta/.tenant.json")


def _denied(calls: list[Callable[[], Any]]) -> None:
    for i, call in enumerate(calls):
        with pytest.raises((nexus.NexusPermissionError, nexus.InvalidArgumentError)) as info:
            call()
        assert isinstance(info.value, nexus.NexusPermissionError), (i, info.value)


def test_tenant_admin_never_reaches_another_tenant_or_the_system(admin: NexusClient,
                                                                 tenants: dict[str, Any]) -> None:
    alice: NexusClient = tenants["alice"]
    keys = tenants["keys"]
    def snapshot() -> list[tuple[Any, ...]]:
        return [(k["key_id"], k["tenant_id"], k["user_id"], k["is_admin"], k["expires_at"],
                 k["revoked_at"]) for k in admin._call_rpc("admin_list_keys", {})]

    before = snapshot()
    _denied([
        lambda: _key(alice, "mallory", tenant="beta"),
        lambda: _key(alice, "mallory", tenant=None),
        lambda: alice._call_rpc("admin_create_key", {"user_id": "mallory", "name": "x",
                                                     "is_admin": True}),
        lambda: alice._call_rpc("admin_list_keys", {"tenant_id": "beta"}),
        lambda: alice._call_rpc("admin_list_keys", {}),
        lambda: alice._call_rpc("admin_get_key", {"key_id": keys["bob"]["key_id"]}),
        lambda: alice._call_rpc("admin_get_key", {"key_id": keys["admin"]["key_id"]}),
        lambda: alice._call_rpc("admin_revoke_key", {"key_id": keys["bob"]["key_id"]}),
        lambda: alice._call_rpc("admin_revoke_key", {"key_id": keys["beta-user"]["key_id"]}),
        lambda: alice._call_rpc("admin_revoke_key", {"key_id": keys["admin"]["key_id"]}),
        lambda: alice._call_rpc("admin_update_key", {"key_id": keys["carol"]["key_id"],
                                                     "expires_at": 4102444800}),
        lambda: alice.get_usage("beta"),
        lambda: alice.billing_preview("beta"),
        lambda: alice.get_tenant("beta"),
        lambda: alice.list_tenants(),
        lambda: alice.tenant_health_metrics(),
        lambda: alice.update_tenant("acme", plan="enterprise"),
        lambda: alice.update_tenant("acme", limits={"max_users": 1000}),
        lambda: alice.create_tenant("alices-own"),
    ])
    # Nothing changed: every key still exists and works.
    assert snapshot() == before
    assert tenants["bob"].exists("/tenants/beta/shared")
    assert admin.get_tenant("acme")["plan"] == "free"


def test_owner_grant_in_another_tenant_makes_no_tenant_admin(admin: NexusClient,
                                                             tenants: dict[str, Any]) -> None:
    # bob of beta is given "owner" on acme's root: he may touch acme's files as the grant
    # says, but he is no administrator of acme (administration needs an acme principal).
    admin.rebac_create(("user", "bob"), "owner", ("file", "/tenants/acme"))
    bob: NexusClient = tenants["bob"]
    _denied([
        lambda: _key(bob, "mallory", tenant="acme"),
        lambda: bob._call_rpc("admin_list_keys", {"tenant_id": "acme"}),
        lambda: bob._call_rpc("admin_revoke_key",
                              {"key_id": tenants["keys"]["alice"]["key_id"]}),
        lambda: bob.get_usage("acme"),
        lambda: bob.billing_preview("acme"),
    ])
    # bob administers beta, though.
    assert _key(bob, "ivan", tenant="beta")["tenant_id"] == "beta"


def test_non_owner_user_can_do_none_of_it(admin: NexusClient, tenants: dict[str, Any]) -> None:
    carol: NexusClient = tenants["carol"]
    keys = tenants["keys"]
    _denied([
        lambda: _key(carol, "mallory"),
        lambda: _key(carol, "carol"),
        lambda: carol._call_rpc("admin_list_keys", {"tenant_id": "acme"}),
        lambda: carol._call_rpc("admin_list_keys", {"tenant_id": "acme", "user_id": "carol"}),
        lambda: carol._call_rpc("admin_get_key", {"key_id": keys["alice"]["key_id"]}),
        lambda: carol._call_rpc("admin_revoke_key", {"key_id": keys["alice"]["key_id"]}),
        lambda: carol.get_usage("acme"),
        lambda: carol.billing_preview("acme"),
        lambda: carol.get_tenant("acme"),
        lambda: carol.get_usage("beta"),
        lambda: carol.update_tenant("acme", plan="pro"),
    ])
    # carol can still do what her grants allow.
    carol.write("/tenants/acme/shared/note", b"hi")
    assert tenants["alice"].read("/tenants/acme/shared/note") == b"hi"


def test_losing_the_owner_grant_ends_delegated_administration(admin: NexusClient,
                                                              tenants: dict[str, Any]) -> None:
    alice: NexusClient = tenants["alice"]
    _key(alice, "dave")
    admin.rebac_delete(subject=("user", "alice"), relation="owner",
                       object=("file", "/tenants/acme"))
    _denied([lambda: _key(alice, "erin"),
             lambda: alice._call_rpc("admin_list_keys", {"tenant_id": "acme"}),
             lambda: alice.get_usage("acme")])
