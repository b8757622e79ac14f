"""The live ``.tenant.json``, tenant records (create, register by mkdir, list, fleet
metrics) and the billing preview."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

import nexus
from nexus.client import NexusClient
from nexus.service import NexusService
from nexus.tenancy import GIB

#: A fixture that makes clients (``tenant_user``, ``connect_as``).
Factory = Callable[..., NexusClient]

DOC = "/tenants/acme/.tenant.json"


def _read_doc(client: NexusClient, tenant: str = "acme") -> dict[str, Any]:
    return json.loads(client.read(f"/tenants/{tenant}/.tenant.json"))


def _key(admin: NexusClient, user: str, tenant: str = "acme") -> dict[str, Any]:
    return admin._call_rpc("admin_create_key", {"user_id": user, "name": user,
                                                "subject_type": "user", "tenant_id": tenant,
                                                "is_admin": False})


def test_document_has_the_guides_shape_with_live_numbers(
        admin: NexusClient, connect_as: Factory,
        service: NexusService) -> None:
    admin.create_tenant("acme", "Acme Corporation", plan="free",
                        settings={"data_retention_days": 90})
    alice = connect_as(api_key=_key(admin, "alice")["api_key"])
    _key(admin, "bob")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    alice.write("/tenants/acme/shared/a", b"a" * 1000)
    alice.write("/tenants/acme/uploads/b", b"b" * 234)
    alice.append("/tenants/acme/uploads/b", b"c" * 10)
    doc = _read_doc(admin)  # live: no fold of the counted calls needed first
    assert {"tenant_id", "name", "plan", "status", "created_at", "limits", "usage",
            "settings"} <= set(doc)
    assert doc["tenant_id"] == "acme" and doc["name"] == "Acme Corporation"
    assert doc["plan"] == "free" and doc["status"] == "active"
    datetime.fromisoformat(doc["created_at"])
    assert {k: doc["limits"][k] for k in ("max_users", "max_storage_gb", "max_files")} == \
        {"max_users": 5, "max_storage_gb": 10, "max_files": 1000}
    usage = doc["usage"]
    assert {"users", "storage_gb", "files", "api_calls"} <= set(usage)
    assert usage["users"] == 2 and usage["files"] == 2
    assert usage["storage_gb"] == pytest.approx(1244 / GIB, abs=1e-6)
    assert usage["storage_gb"] > 0
    assert usage["api_calls"] == 3
    assert doc["settings"] == {"data_retention_days": 90}
    # The tenant's owner reads the same document (her read is her fourth call, counted
    # on admission); it is what get_tenant says, and folding the counts changes nothing.
    doc["usage"]["api_calls"] = 4
    assert _read_doc(alice) == doc
    assert admin.get_tenant("acme") == doc
    service.tenants.flush_api_calls()
    assert admin.get_tenant("acme") == doc
    assert admin.stat(DOC)["size"] == len(admin.read(DOC))
    assert admin.exists(DOC)


def test_admin_writes_the_document_guide_style(admin: NexusClient) -> None:
    admin.create_tenant("acme", "Acme", plan="free")
    admin.create_tenant("beta", "Beta", plan="free")
    admin.write("/tenants/acme/x", b"x" * 10)
    doc = _read_doc(admin)
    doc["plan"] = "pro"
    doc["name"] = "Acme Corp"
    doc["limits"]["max_users"] = 7
    doc["usage"] = {"users": 999, "storage_gb": 123.0, "files": 55, "api_calls": 1}
    doc["status"] = "suspended"
    doc["suspension_reason"] = "Payment overdue"
    doc["settings"] = {"enforce_2fa": True}
    doc["billing_email"] = "billing@acme.example"
    doc["tenant_id"] = "beta"                 # identity fields are not writable
    doc["created_at"] = "1999-01-01T00:00:00"
    admin.write(DOC, json.dumps(doc, indent=2).encode())
    after = _read_doc(admin)
    assert after["tenant_id"] == "acme" and after["name"] == "Acme Corp"
    assert after["plan"] == "pro" and after["status"] == "suspended"
    assert after["limits"]["max_users"] == 7
    assert after["settings"] == {"enforce_2fa": True}
    assert after["billing_email"] == "billing@acme.example"
    assert after["created_at"] != "1999-01-01T00:00:00"
    assert after["usage"]["users"] == 0 and after["usage"]["files"] == 1
    assert after["usage"]["storage_bytes"] == 10
    assert admin.get_tenant("acme")["status"] == "suspended"
    assert _read_doc(admin, "beta")["name"] == "Beta"
    # Written again without the extra field and back to active: both take effect.
    after.pop("billing_email")
    after["status"] = "active"
    admin.write(DOC, json.dumps(after).encode())
    final = _read_doc(admin)
    assert "billing_email" not in final and final["status"] == "active"


def test_bad_documents_are_refused_and_change_nothing(admin: NexusClient) -> None:
    admin.create_tenant("acme", plan="free")
    before = _read_doc(admin)
    bad: list[tuple[bytes, type[nexus.NexusError]]] = [
        (b"not json", nexus.InvalidArgumentError),
        (b"[1, 2]", nexus.InvalidArgumentError),
        (json.dumps({**before, "plan": "platinum"}).encode(), nexus.InvalidArgumentError),
        (json.dumps({**before, "status": "frozen"}).encode(), nexus.InvalidArgumentError),
        (json.dumps({**before, "limits": {"max_users": -1}}).encode(),
         nexus.InvalidArgumentError),
        (json.dumps({**before, "limits": {"max_files": "many"}}).encode(),
         nexus.InvalidArgumentError),
    ]
    for data, error in bad:
        with pytest.raises(error):
            admin.write(DOC, data)
    assert _read_doc(admin) == before
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.write("/tenants/ghost/.tenant.json", json.dumps(before).encode())
    with pytest.raises(nexus.NexusFileNotFoundError):
        admin.read("/tenants/ghost/.tenant.json")
    assert [t["tenant_id"] for t in admin.list_tenants()["tenants"]] == ["acme"]


def test_only_the_system_administrator_writes_the_document(
        admin: NexusClient, connect_as: Factory) -> None:
    admin.create_tenant("acme", plan="free")
    admin.create_tenant("beta", plan="free")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.rebac_create(("user", "bob"), "owner", ("file", "/tenants/beta"))
    alice = connect_as(api_key=_key(admin, "alice")["api_key"])
    bob = connect_as(api_key=_key(admin, "bob", "beta")["api_key"])
    plain = connect_as(api_key=_key(admin, "carol")["api_key"])
    doc = _read_doc(alice)
    upgraded = json.dumps({**doc, "plan": "enterprise",
                           "limits": {"max_users": None}}).encode()
    for client in (alice, plain, bob):
        with pytest.raises(nexus.NexusPermissionError):
            client.write(DOC, upgraded)
        # Streamed (the HTTP upload route) is no way around it.
        with pytest.raises(nexus.NexusPermissionError):
            client.write(DOC, iter([upgraded]))
    assert admin.get_tenant("acme")["plan"] == "free"
    for client in (bob, plain):
        with pytest.raises(nexus.NexusPermissionError):
            client.read(DOC)
        with pytest.raises(nexus.NexusPermissionError):
            client.stat(DOC)
    with pytest.raises(nexus.NexusPermissionError):
        alice.read("/tenants/beta/.tenant.json")


def test_the_document_cannot_be_deleted_moved_copied_or_appended(
        admin: NexusClient, tenant_user: Factory) -> None:
    admin.create_tenant("acme", plan="free")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    admin.write("/tenants/acme/shared/f", b"{}")
    alice = tenant_user("acme", "alice")
    for client in (admin, alice):
        for call in (lambda c=client: c.delete(DOC),
                     lambda c=client: c.rename(DOC, "/tenants/acme/shared/t.json"),
                     lambda c=client: c.rename("/tenants/acme/shared/f", DOC, overwrite=True),
                     lambda c=client: c.copy(DOC, "/tenants/acme/shared/t.json"),
                     lambda c=client: c.copy("/tenants/acme/shared/f", DOC, overwrite=True),
                     lambda c=client: c.append(DOC, b" "),
                     lambda c=client: c.mkdir(DOC)):
            with pytest.raises(nexus.InvalidArgumentError):
                call()
    assert _read_doc(admin)["tenant_id"] == "acme"
    assert admin.read("/tenants/acme/shared/f") == b"{}"
    assert not admin.exists("/tenants/acme/shared/t.json")


def test_nothing_can_be_created_below_the_document(admin: NexusClient,
                                                   tenant_user: Factory) -> None:
    admin.create_tenant("acme", plan="free")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    alice = tenant_user("acme", "alice")
    refused = (nexus.InvalidArgumentError, nexus.NexusNotADirectoryError)
    with pytest.raises(refused):
        alice.write(f"{DOC}/x", b"hidden")
    with pytest.raises(refused):
        alice.mkdir(f"{DOC}/sub")
    assert DOC not in {e["path"] for e in admin.list("/tenants/acme", recursive=True)}


def test_a_deleted_and_recreated_tenant_starts_from_zero(admin: NexusClient,
                                                         service: NexusService) -> None:
    admin.create_tenant("acme", plan="pro", max_files=9)
    _key(admin, "alice")
    admin.write("/tenants/acme/shared/a", b"a" * 100)
    admin.delete_tenant("acme", confirm=True)
    admin.mkdir("/tenants/acme")
    doc = _read_doc(admin)
    assert doc["plan"] == "free" and doc["limits"]["max_files"] == 1000
    assert (doc["usage"]["users"], doc["usage"]["files"], doc["usage"]["storage_bytes"]) == \
        (0, 0, 0)
    assert admin._call_rpc("admin_list_keys", {"tenant_id": "acme"}) == []
    assert not admin.exists("/tenants/acme/shared/a")
    admin.write("/tenants/acme/a", b"a" * 100)  # the same content as before the deletion
    assert admin.read("/tenants/acme/a") == b"a" * 100
    report = service.maintenance.fsck()
    assert report.ok, report.problems


# -- tenant records ---------------------------------------------------------------------


def test_mkdir_registers_a_free_tenant(admin: NexusClient, tenant_user: Factory) -> None:
    admin.mkdir("/tenants/x")
    admin.mkdir("/tenants/y/deep/er")  # registered through its parents too
    listed = {t["tenant_id"]: t for t in admin.list_tenants()["tenants"]}
    assert set(listed) >= {"x", "y"}
    assert listed["x"]["plan"] == "free" and listed["x"]["status"] == "active"
    assert _read_doc(admin, "x")["limits"]["max_users"] == 5
    metrics = admin.tenant_health_metrics()
    assert metrics["by_plan"].get("free", 0) == metrics["total_tenants"] == len(listed)
    with pytest.raises(nexus.NexusFileExistsError):
        admin.create_tenant("x")
    # A tenant user cannot create tenants, by mkdir or otherwise.
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/x"))
    alice = tenant_user("x", "alice")
    with pytest.raises(nexus.NexusPermissionError):
        alice.mkdir("/tenants/evil")
    with pytest.raises(nexus.NexusPermissionError):
        alice.create_tenant("evil")
    assert "evil" not in {t["tenant_id"] for t in admin.list_tenants()["tenants"]}


def test_create_tenant_makes_the_standard_folders_once(admin: NexusClient) -> None:
    created = admin.create_tenant("acme", "Acme", plan="pro", max_files=7)
    assert created["tenant_id"] == "acme" and created["plan"] == "pro"
    assert created["limits"]["max_files"] == 7 and created["limits"]["max_users"] == 50
    names = sorted(e["name"] for e in admin.list("/tenants/acme"))
    assert names == ["exports", "shared", "uploads", "users"]
    assert all(e["type"] == "directory" for e in admin.list("/tenants/acme"))
    admin.write("/tenants/acme/shared/keep", b"k")
    with pytest.raises(nexus.NexusFileExistsError):
        admin.create_tenant("acme", plan="free")
    assert admin.get_tenant("acme")["plan"] == "pro"
    assert admin.read("/tenants/acme/shared/keep") == b"k"
    for bad in ("Acme", "../beta", "a/b", "", "-x", "_system", "x" * 64):
        with pytest.raises(nexus.InvalidArgumentError):
            admin.create_tenant(bad)
    with pytest.raises(nexus.InvalidArgumentError):
        admin.create_tenant("beta", plan="platinum")
    with pytest.raises(nexus.InvalidArgumentError):
        admin.create_tenant("beta", max_users=-3)
    with pytest.raises(nexus.InvalidArgumentError):
        admin.create_tenant("beta", status="deleted")
    assert [t["tenant_id"] for t in admin.list_tenants()["tenants"]] == ["acme"]


def _all_pages(admin: NexusClient, limit: int, **filters: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        page = admin.list_tenants(limit=limit, cursor=cursor, **filters)
        assert len(page["tenants"]) <= limit
        ids += [t["tenant_id"] for t in page["tenants"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
        assert len(page["tenants"]) == limit
    raise AssertionError("pagination does not end")


def test_list_tenants_pages_and_filters(admin: NexusClient) -> None:
    plans = ("free", "pro", "enterprise")
    expected: dict[str, tuple[str, str]] = {}
    for i in range(25):
        tenant = f"t{i:02d}"
        plan, status = plans[i % 3], ("active" if i % 2 else "trial")
        admin.create_tenant(tenant, plan=plan, status=status)
        expected[tenant] = (plan, status)
    first = admin.list_tenants(limit=10)
    assert [t["tenant_id"] for t in first["tenants"]] == [f"t{i:02d}" for i in range(10)]
    assert first["next_cursor"] is not None
    second = admin.list_tenants(limit=10, cursor=first["next_cursor"])
    assert [t["tenant_id"] for t in second["tenants"]] == [f"t{i:02d}" for i in range(10, 20)]
    third = admin.list_tenants(limit=10, cursor=second["next_cursor"])
    assert [t["tenant_id"] for t in third["tenants"]] == [f"t{i:02d}" for i in range(20, 25)]
    assert third["next_cursor"] is None
    assert _all_pages(admin, 5) == sorted(expected)  # exact multiple of the page size
    for plan in plans:
        for status in ("active", "trial", None):
            want = sorted(t for t, (p, s) in expected.items()
                          if p == plan and (status is None or s == status))
            assert _all_pages(admin, 3, plan=plan, status=status) == want
    assert _all_pages(admin, 4, status="trial") == sorted(
        t for t, (_, s) in expected.items() if s == "trial")
    assert admin.list_tenants(status="suspended")["tenants"] == []
    for bad in (0, -1, 1001):
        with pytest.raises(nexus.InvalidArgumentError):
            admin.list_tenants(limit=bad)


def test_tenant_health_metrics_totals(admin: NexusClient) -> None:
    admin.create_tenant("a", plan="free")
    admin.create_tenant("b", plan="pro", status="trial")
    admin.create_tenant("c", plan="enterprise")
    admin.mkdir("/tenants/d")
    admin.suspend_tenant("d", "test")
    for user in ("u1", "u2", "u3"):
        _key(admin, user, "a")
    _key(admin, "u1", "b")
    admin.write("/tenants/a/f", b"f" * 3000)
    admin.write("/tenants/c/g", b"g" * 5000)
    m = admin.tenant_health_metrics()
    assert m["total_tenants"] == 4
    assert m["by_plan"] == {"free": 2, "pro": 1, "enterprise": 1}
    assert m["by_status"] == {"active": 2, "trial": 1, "suspended": 1}
    assert m["total_users"] == 4
    assert m["avg_users_per_tenant"] == pytest.approx(1.0)
    assert m["total_storage_gb"] == pytest.approx(8000 / GIB, abs=1e-6)
    assert m["avg_storage_per_tenant"] == pytest.approx(m["total_storage_gb"] / 4)
    # Deleting a tenant takes it out of the totals.
    admin.delete_tenant("a", confirm=True)
    m = admin.tenant_health_metrics()
    assert m["total_tenants"] == 3 and m["total_users"] == 1
    assert m["by_plan"] == {"free": 1, "pro": 1, "enterprise": 1}


# -- billing ----------------------------------------------------------------------------


def test_billing_preview_overage_and_plan_prices(admin: NexusClient) -> None:
    admin.create_tenant("acme", plan="free")
    for user in ("u1", "u2", "u3"):
        _key(admin, user)
    assert admin.billing_preview("acme")["total"] == 0
    admin.update_tenant("acme", limits={"max_users": 1})
    bill = admin.billing_preview("acme")
    assert bill["plan"] == "free" and bill["base"] == 0
    users = [line for line in bill["overage"] if "user" in line["item"]]
    assert len(users) == 1
    assert users[0]["quantity"] == 2 and users[0]["unit_price"] == 10
    assert users[0]["amount"] == 20
    assert bill["total"] == pytest.approx(20 + sum(
        line["amount"] for line in bill["overage"] if line not in users))
    assert bill["total"] == 20
    assert bill["metered"]["peak_users"] == 3
    usage = admin.get_usage("acme")
    assert usage["utilization"]["users"] == 300.0
    assert any("Users" in w for w in usage["warnings"])

    admin.create_tenant("pro-co", plan="pro")
    _key(admin, "p1", "pro-co")
    bill = admin.billing_preview("pro-co")
    assert (bill["base"], bill["overage"], bill["total"]) == (99, [], 99)
    admin.create_tenant("big", plan="enterprise")
    assert admin.billing_preview("big")["total"] == 499
    # Moving to pro: its base price and its 50-user limit (no overage for 3 users).
    admin.update_tenant("acme", plan="pro", limits={})
    bill = admin.billing_preview("acme")
    assert (bill["base"], bill["overage"], bill["total"]) == (99, [], 99)
    with pytest.raises(nexus.InvalidArgumentError):
        admin.billing_preview("acme", month="March")


@pytest.mark.parametrize(("month", "says"), [
    ("2026-13", "01 to 12"), ("2026-00", "01 to 12"), ("26-01", "YYYY-MM"),
    ("2026-1", "YYYY-MM"), ("9999-01", "has not begun"), ("2000-01", "did not exist"),
    (202601, "string")])
def test_billing_preview_refuses_months_without_a_bill(admin: NexusClient, month: Any,
                                                       says: str) -> None:
    # A bill for a month that is not one, has not begun or predates the tenant would be
    # made up (it used to print an empty bill).
    admin.create_tenant("acme", plan="pro")
    with pytest.raises(nexus.InvalidArgumentError, match=says) as caught:
        admin.billing_preview("acme", month=month)
    assert caught.value.details.get("param") == "month"
    current = admin.billing_preview("acme")["month"]
    assert admin.billing_preview("acme", month=current)["base"] == 99
