"""Per-tenant authorization models: a tenant may refine its own model, validated first."""

from __future__ import annotations

import pytest

import nexus
from nexus.authz import default_model_text
from nexus.client import NexusClient

BLOCKABLE = default_model_text().replace(
    "define can_read: [user, user:*, group#member, tenant#member] or viewer or can_read "
    "from parent",
    "define blocked: [user]\n    define can_read: ([user, user:*, group#member, "
    "tenant#member] or viewer or can_read from parent) but not blocked")


@pytest.fixture
def acme(admin: NexusClient, tenant_user) -> dict[str, NexusClient]:
    for tenant in ("acme", "beta"):
        admin.create_tenant(tenant, plan="pro")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.rebac_create(("user", "dan"), "can_read", ("file", "/tenants/acme/shared"))
    admin.rebac_create(("user", "dan"), "can_read", ("file", "/tenants/beta/shared"))
    admin.write("/tenants/acme/shared/secret.md", b"s")
    admin.write("/tenants/beta/shared/secret.md", b"s")
    return {"alice": tenant_user("acme", "alice"), "dan": tenant_user("acme", "dan"),
            "beta_dan": tenant_user("beta", "dan")}


def test_tenant_admin_refines_its_model(acme, admin: NexusClient) -> None:
    assert "blocked" not in BLOCKABLE.split("type file")[0]
    alice, dan = acme["alice"], acme["dan"]
    assert alice.rebac_read_model()["model_id"] == "default"
    written = alice.rebac_write_model(BLOCKABLE)
    assert alice.rebac_read_model()["model_id"] == written["model_id"]
    alice.rebac_create(("user", "dan"), "blocked", ("file", "/tenants/acme/shared/secret.md"))
    with pytest.raises(nexus.NexusPermissionError):
        dan.read("/tenants/acme/shared/secret.md")
    # beta still runs the default model, where "blocked" does not exist.
    with pytest.raises(nexus.InvalidArgumentError):
        admin.rebac_create(("user", "dan"), "blocked",
                           ("file", "/tenants/beta/shared/secret.md"))
    assert admin.rebac_read_model(tenant_id="beta")["model_id"] == "default"


def test_bad_models_change_nothing(acme, admin: NexusClient) -> None:
    alice, dan = acme["alice"], acme["dan"]
    with pytest.raises(nexus.InvalidArgumentError, match="line"):
        alice.rebac_write_model("model\n  schema 1.1\ntype user\ntype file\n  relations\n"
                                "    define owner: [nobody]\n")
    without_read = default_model_text().replace("can_read", "may_read")
    with pytest.raises(nexus.InvalidArgumentError, match="file#can_read"):
        alice.rebac_write_model(without_read)
    admin.rebac_create(("group", "eng", "member"), "can_read", ("file", "/tenants/acme/eng"))
    no_groups = BLOCKABLE.replace(", group#member", "")
    with pytest.raises(nexus.InvalidArgumentError, match="existing tuples"):
        alice.rebac_write_model(no_groups)
    with pytest.raises(nexus.NexusPermissionError):
        dan.rebac_write_model(BLOCKABLE)  # not an owner of the tenant
    with pytest.raises(nexus.NexusPermissionError):
        acme["beta_dan"].rebac_write_model(BLOCKABLE, tenant_id="acme")
    assert alice.rebac_read_model()["model_id"] == "default"
    assert dan.read("/tenants/acme/shared/secret.md") == b"s"
