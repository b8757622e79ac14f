"""API keys: create, use, list without secrets, update, revoke, expire."""

from __future__ import annotations

import time

import pytest

import nexus
from nexus.client import NexusClient


def _create(admin: NexusClient, user: str, tenant: str = "acme", **extra) -> dict:
    return admin._call_rpc("admin_create_key", {"user_id": user, "name": f"{user} key",
                                                "subject_type": "user", "tenant_id": tenant,
                                                "is_admin": False, **extra})


def test_key_lifecycle(admin: NexusClient, connect_as, service) -> None:
    admin.mkdir("/tenants/acme/shared")
    created = _create(admin, "alice")
    key = created["api_key"]
    assert key.startswith(f"nx_{created['key_id']}_")
    assert {"key_id", "user_id", "tenant_id"} <= set(created)
    assert created["user_id"] == "alice" and created["tenant_id"] == "acme"
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    alice = connect_as(api_key=key)
    alice.write("/tenants/acme/shared/a.txt", b"a")
    listed = admin._call_rpc("admin_list_keys", {"tenant_id": "acme"})
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert all("api_key" not in k and "secret_hash" not in k for k in listed)
    assert key.split("_", 2)[2] not in str(listed)
    got = admin._call_rpc("admin_get_key", {"key_id": created["key_id"]})
    assert got["last_used_at"] is not None
    renamed = admin._call_rpc("admin_update_key", {"key_id": created["key_id"], "name": "A"})
    assert renamed["name"] == "A"
    admin._call_rpc("admin_revoke_key", {"key_id": created["key_id"]})
    with pytest.raises(nexus.AuthenticationError, match="revoked"):
        alice.read("/tenants/acme/shared/a.txt")
    # The stored hash is not the secret and no column holds the key text.
    with service.db.read() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM api_keys").fetchall()
    assert key not in str(rows) and key.split("_", 2)[2] not in str(rows)


def test_expired_key_is_refused(admin: NexusClient, connect_as, service,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    admin.mkdir("/tenants/acme")
    created = _create(admin, "temp", expires_at=time.time() + 60)
    admin.rebac_create(("user", "temp"), "owner", ("file", "/tenants/acme"))
    temp = connect_as(api_key=created["api_key"])
    temp.mkdir("/tenants/acme/ok")
    # The key service's clock moves past the expiry (no sleep, no race with a slow machine).
    monkeypatch.setattr(service.keys, "_clock", lambda: time.time() + 61)
    with pytest.raises(nexus.AuthenticationError, match="expired"):
        temp.list("/tenants/acme")


def test_key_rules(admin: NexusClient, tenant_user) -> None:
    admin.mkdir("/tenants/acme")
    with pytest.raises(nexus.NexusFileNotFoundError):
        _create(admin, "x", tenant="ghost")
    with pytest.raises(nexus.InvalidArgumentError):
        _create(admin, "x", is_admin=True)  # a system admin key has no tenant
    with pytest.raises(nexus.InvalidArgumentError):
        _create(admin, "bad/user")
    with pytest.raises(nexus.InvalidArgumentError):
        admin._call_rpc("admin_create_key", {"user_id": "x", "name": "x"})
    alice = tenant_user("acme", "alice")
    for method, params in (("admin_create_key", {"user_id": "evil", "name": "x",
                                                  "tenant_id": "acme"}),
                           ("admin_list_keys", {}),
                           ("admin_revoke_key", {"key_id": "000000000000"})):
        with pytest.raises(nexus.NexusPermissionError):
            alice._call_rpc(method, params)


def test_two_users_named_alice_are_two_users(admin: NexusClient, connect_as) -> None:
    for tenant in ("acme", "beta"):
        admin.mkdir(f"/tenants/{tenant}/shared")
    acme_alice = connect_as(api_key=_create(admin, "alice", "acme")["api_key"])
    beta_alice = connect_as(api_key=_create(admin, "alice", "beta")["api_key"])
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    acme_alice.write("/tenants/acme/shared/x", b"acme only")
    with pytest.raises(nexus.NexusPermissionError):
        beta_alice.read("/tenants/acme/shared/x")
    with pytest.raises(nexus.NexusPermissionError):
        beta_alice.write("/tenants/beta/shared/y", b"no grant in beta yet")
