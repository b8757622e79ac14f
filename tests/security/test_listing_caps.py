"""Listings that answer a whole list in one call are capped: past the cap they refuse
with ``limit_exceeded`` instead of costing whatever the stored rows cost (keys, shares;
the ReBAC listings page instead, see test_authz_dos.py)."""

from __future__ import annotations

import pytest

import nexus
import nexus.service.keys as keys_module
import nexus.service.shares as shares_module
from nexus.client import NexusClient


def _key(admin: NexusClient, user: str) -> None:
    admin._call_rpc("admin_create_key", {"user_id": user, "name": user, "tenant_id": "capco"})


def test_key_listing_is_capped(admin: NexusClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_module, "MAX_LISTED_KEYS", 2)
    admin.create_tenant("capco")
    _key(admin, "u1")
    _key(admin, "u2")
    assert len(admin._call_rpc("admin_list_keys", {"tenant_id": "capco"})) == 2  # the cap
    _key(admin, "u3")
    with pytest.raises(nexus.LimitExceededError) as info:
        admin._call_rpc("admin_list_keys", {"tenant_id": "capco"})
    assert info.value.details["limit"] == 2 and "user_id" in str(info.value)
    # Narrowed to one user, the listing answers again.
    assert len(admin._call_rpc("admin_list_keys", {"tenant_id": "capco",
                                                   "user_id": "u3"})) == 1


def test_share_listing_is_capped(admin: NexusClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shares_module, "MAX_LISTED_SHARES", 2)
    for tenant in ("capco", "other"):
        admin.create_tenant(tenant)
    for name in ("a", "b", "c"):
        admin.write(f"/tenants/capco/shared/{name}.txt", b"x")
    admin.create_share("/tenants/capco/shared/a.txt", "other")
    admin.create_share("/tenants/capco/shared/b.txt", "other")
    assert len(admin.list_shares("capco")) == 2
    assert len(admin.list_shares("other", direction="incoming")) == 2
    admin.create_share("/tenants/capco/shared/c.txt", "other")
    for tenant, direction in (("capco", "outgoing"), ("other", "incoming")):
        with pytest.raises(nexus.LimitExceededError) as info:
            admin.list_shares(tenant, direction=direction)
        assert info.value.details["limit"] == 2
