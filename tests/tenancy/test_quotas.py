"""Quotas: hard limits under concurrency, exact counters for every operation, rejected
operations that change nothing, and plan or limit changes that apply at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import nexus
from nexus.client import NexusClient
from nexus.service import NexusService
from nexus.tenancy import GIB

#: A fixture that makes clients (``tenant_user``, ``connect_as``).
Factory = Callable[..., NexusClient]

KIB = 1024


def _counters(admin: NexusClient, tenant: str) -> tuple[int, int]:
    usage = admin.get_tenant(tenant)["usage"]
    return usage["storage_bytes"], usage["files"]


def _stored(admin: NexusClient, tenant: str) -> tuple[int, int]:
    """Bytes and file count of what a recursive listing shows."""
    entries = [e for e in admin.list(f"/tenants/{tenant}", recursive=True)
               if e["type"] == "file"]
    return sum(e["size"] for e in entries), len(entries)


def _assert_consistent(admin: NexusClient, service: NexusService, tenant: str,
                       expected: tuple[int, int]) -> None:
    assert _counters(admin, tenant) == expected
    assert _stored(admin, tenant) == expected
    report = service.maintenance.fsck()
    assert report.ok, report.problems


def _race(admin: NexusClient, tenant: str, count: int, size: int
          ) -> tuple[list[str], list[nexus.QuotaExceededError]]:
    """``count`` concurrent writers of distinct ``size``-byte files; what succeeded, and
    the quota errors."""

    def one(i: int) -> str | nexus.QuotaExceededError:
        path = f"/tenants/{tenant}/uploads/f{i:03d}.bin"
        data = bytes([i % 251]) * size
        while True:
            try:
                # Streams skip the advisory precheck: the charge in the transaction decides.
                admin.write(path, data if i % 2 else iter([data[:size // 2],
                                                           data[size // 2:]]))
            except nexus.QuotaExceededError as exc:
                return exc
            except nexus.RateLimitedError:
                # Over HTTP more than the server's streams-per-tenant cap may be open at
                # once; a well-behaved client retries the 429 (before any byte was kept).
                continue
            return path

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(count)))
    ok = [r for r in results if isinstance(r, str)]
    errors = [r for r in results if isinstance(r, nexus.QuotaExceededError)]
    assert len(ok) + len(errors) == count
    return ok, errors


# -- races ------------------------------------------------------------------------------


def test_storage_limit_holds_under_concurrent_writers(admin: NexusClient,
                                                      service: NexusService) -> None:
    size, limit = 4 * KIB, 64 * KIB + 1000
    admin.create_tenant("acme", plan="free", max_storage_gb=limit / GIB, max_files=40)
    assert admin.get_tenant("acme")["limits"]["max_storage_gb"] * GIB == limit
    ok, errors = _race(admin, "acme", 50, size)
    assert len(ok) == limit // size == 16
    assert len(errors) == 50 - 16
    assert all(e.details["resource"] == "storage" for e in errors)
    used = admin.get_usage("acme")["usage"]["storage_bytes"]
    assert used == len(ok) * size <= limit
    _assert_consistent(admin, service, "acme", (len(ok) * size, len(ok)))
    listed = {e["path"] for e in admin.list("/tenants/acme", recursive=True)
              if e["type"] == "file"}
    assert listed == set(ok)


def test_file_limit_holds_under_concurrent_writers(admin: NexusClient,
                                                   service: NexusService) -> None:
    size = 2 * KIB
    admin.create_tenant("acme", plan="free", max_files=40)
    ok, errors = _race(admin, "acme", 50, size)
    assert len(ok) == 40
    assert len(errors) == 10
    assert all(e.details["resource"] == "files" and e.details["limit"] == 40 for e in errors)
    assert admin.get_usage("acme")["usage"]["files"] == 40
    _assert_consistent(admin, service, "acme", (40 * size, 40))


def test_concurrent_overwrites_and_appends_keep_counters_exact(
        admin: NexusClient, service: NexusService) -> None:
    # Writers replace and extend the same few files while a storage limit bites.
    limit = 40 * KIB
    admin.create_tenant("acme", plan="free", max_storage_gb=limit / GIB)
    paths = [f"/tenants/acme/shared/f{i}" for i in range(4)]

    def one(i: int) -> bool:
        path = paths[i % 4]
        try:
            if i % 3 == 0:
                admin.append(path, b"a" * (1 * KIB))
            else:
                admin.write(path, b"w" * ((i % 7 + 1) * KIB))
        except nexus.QuotaExceededError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(36)))
    used, files = _counters(admin, "acme")
    assert used <= limit
    _assert_consistent(admin, service, "acme", (used, files))
    assert used == sum(len(admin.read(p)) for p in paths if admin.exists(p))


# -- exact counters ---------------------------------------------------------------------


def test_counters_follow_every_operation(admin: NexusClient, service: NexusService) -> None:
    admin.create_tenant("acme", plan="pro")
    admin.create_tenant("beta", plan="pro")
    a, b = "/tenants/acme", "/tenants/beta"
    steps: list[tuple[Any, tuple[int, int], tuple[int, int]]] = [
        (lambda: admin.write(f"{a}/x", b"x" * 100), (100, 1), (0, 0)),
        (lambda: admin.write(f"{a}/x", b"x" * 300), (300, 1), (0, 0)),      # bigger
        (lambda: admin.write(f"{a}/x", b"x" * 50), (50, 1), (0, 0)),        # smaller
        (lambda: admin.write(f"{a}/d/y", b"y" * 200), (250, 2), (0, 0)),
        (lambda: admin.copy(f"{a}/x", f"{a}/z"), (300, 3), (0, 0)),         # copy, new
        (lambda: admin.copy(f"{a}/d/y", f"{a}/z", overwrite=True), (450, 3), (0, 0)),
        (lambda: admin.append(f"{a}/x", b"+" * 25), (475, 3), (0, 0)),     # x is 75
        (lambda: admin.append(f"{a}/log", b"l" * 10), (485, 4), (0, 0)),   # append creates
        (lambda: admin.write(f"{a}/empty", b""), (485, 5), (0, 0)),
        (lambda: admin.rename(f"{a}/x", f"{a}/d/e/x2"), (485, 5), (0, 0)),  # within
        (lambda: admin.rename(f"{a}/d", f"{a}/moved"), (485, 5), (0, 0)),   # a directory
        (lambda: admin.rename(f"{a}/moved/e/x2", f"{b}/x3"), (410, 4), (75, 1)),  # across
        (lambda: admin.rename(f"{a}/z", f"{a}/moved/y", overwrite=True), (210, 3), (75, 1)),
        (lambda: admin.copy(f"{b}/x3", f"{a}/from-beta"), (285, 4), (75, 1)),
        (lambda: admin.write(f"{b}/big", b"b" * 500), (285, 4), (575, 2)),
        (lambda: admin.rename(f"{a}/from-beta", f"{b}/big", overwrite=True), (210, 3),
         (150, 2)),
        (lambda: admin.copy(f"{a}/log", f"{b}/x3", overwrite=True), (210, 3), (85, 2)),
        (lambda: admin.delete(f"{a}/log"), (200, 2), (85, 2)),
        (lambda: admin.write(f"{a}/moved/deep/1", b"1" * 11), (211, 3), (85, 2)),
        (lambda: admin.write(f"{a}/moved/deep/er/2", b"2" * 22), (233, 4), (85, 2)),
        (lambda: admin.rmdir(f"{a}/moved", recursive=True), (0, 1), (85, 2)),
        (lambda: admin.delete(f"{a}/empty"), (0, 0), (85, 2)),
    ]
    for i, (step, want_a, want_b) in enumerate(steps):
        step()
        assert (_counters(admin, "acme"), _counters(admin, "beta")) == (want_a, want_b), i
    _assert_consistent(admin, service, "acme", (0, 0))
    _assert_consistent(admin, service, "beta", (85, 2))
    assert admin.read(f"{b}/x3") == b"l" * 10


def test_rmdir_recursive_of_a_tenant_subtree_with_many_files(
        admin: NexusClient, service: NexusService) -> None:
    admin.create_tenant("acme")
    for i in range(12):
        admin.write(f"/tenants/acme/shared/p{i % 3}/q{i % 2}/f{i}", b"z" * (i + 1))
    admin.write("/tenants/acme/users/keep", b"k" * 7)
    assert _counters(admin, "acme") == (sum(range(1, 13)) + 7, 13)
    admin.rmdir("/tenants/acme/shared/p1", recursive=True)
    gone = sum(i + 1 for i in range(12) if i % 3 == 1)
    _assert_consistent(admin, service, "acme", (sum(range(1, 13)) + 7 - gone, 9))
    admin.rmdir("/tenants/acme/shared", recursive=True)
    _assert_consistent(admin, service, "acme", (7, 1))


# -- rejections change nothing ----------------------------------------------------------


def _expect_quota(call: Any, resource: str, limit: int, current: int) -> None:
    with pytest.raises(nexus.QuotaExceededError) as info:
        call()
    exc = info.value
    assert exc.details["resource"] == resource
    assert exc.details["limit"] == limit
    assert exc.details["current"] == current
    message = str(exc)
    assert resource in message and str(limit) in message and str(current) in message


def test_rejected_operations_change_nothing(admin: NexusClient, service: NexusService) -> None:
    limit = 1000
    admin.create_tenant("acme", max_storage_gb=limit / GIB, max_files=3)
    admin.create_tenant("beta", plan="pro")
    a = "/tenants/acme/shared"
    admin.write(f"{a}/one", b"1" * 600)
    before = (600, 1)

    def unchanged() -> None:
        assert _counters(admin, "acme") == before
        assert admin.read(f"{a}/one") == b"1" * 600

    _expect_quota(lambda: admin.write(f"{a}/two", b"2" * 401), "storage", limit, 600)
    assert not admin.exists(f"{a}/two")
    unchanged()
    _expect_quota(lambda: admin.write(f"{a}/one", b"3" * 1001), "storage", limit, 600)
    unchanged()
    _expect_quota(lambda: admin.append(f"{a}/one", b"4" * 401), "storage", limit, 600)
    unchanged()
    _expect_quota(lambda: admin.append(f"{a}/new", b"4" * 401), "storage", limit, 600)
    assert not admin.exists(f"{a}/new")
    _expect_quota(lambda: admin.copy(f"{a}/one", f"{a}/copy"), "storage", limit, 600)
    assert not admin.exists(f"{a}/copy")
    unchanged()
    # A stream has no known size: the charge in the transaction refuses it all the same.
    _expect_quota(lambda: admin.write(f"{a}/stream", iter([b"s" * 300, b"s" * 300])),
                  "storage", limit, 600)
    assert not admin.exists(f"{a}/stream")
    unchanged()
    admin.write(f"{a}/small", b"s" * 100)
    before = (700, 2)
    _expect_quota(lambda: admin.copy(f"{a}/one", f"{a}/small", overwrite=True),
                  "storage", limit, 700)
    assert admin.read(f"{a}/small") == b"s" * 100
    unchanged()
    # Moving a file in from another tenant is a charge on the destination.
    admin.write("/tenants/beta/big", b"b" * 400)
    _expect_quota(lambda: admin.rename("/tenants/beta/big", f"{a}/big"), "storage", limit, 700)
    assert admin.read("/tenants/beta/big") == b"b" * 400
    assert _counters(admin, "beta") == (400, 1)
    _expect_quota(lambda: admin.copy("/tenants/beta/big", f"{a}/big"), "storage", limit, 700)
    unchanged()
    # The file limit: a third file fits, a fourth does not (whatever its size).
    admin.write(f"{a}/three", b"")
    before = (700, 3)
    _expect_quota(lambda: admin.write(f"{a}/four", b""), "files", 3, 3)
    _expect_quota(lambda: admin.append(f"{a}/four", b"x"), "files", 3, 3)
    _expect_quota(lambda: admin.copy(f"{a}/small", f"{a}/four"), "files", 3, 3)
    admin.write("/tenants/beta/tiny", b"t")
    _expect_quota(lambda: admin.rename("/tenants/beta/tiny", f"{a}/four"), "files", 3, 3)
    assert admin.exists("/tenants/beta/tiny") and not admin.exists(f"{a}/four")
    unchanged()
    # Shrinking within the limit still works at the file limit.
    admin.write(f"{a}/one", b"1" * 300)
    _assert_consistent(admin, service, "acme", (400, 3))
    _assert_consistent(admin, service, "beta", (401, 2))


def test_overwrite_is_charged_by_its_delta(admin: NexusClient, service: NexusService) -> None:
    admin.create_tenant("acme", max_storage_gb=1000 / GIB)
    admin.write("/tenants/acme/f", b"a" * 600)
    admin.write("/tenants/acme/f", b"b" * 600)   # same size: nothing more is stored
    admin.write("/tenants/acme/f", b"c" * 1000)  # exactly at the limit
    _assert_consistent(admin, service, "acme", (1000, 1))


def test_quota_error_reaches_a_tenant_user(admin: NexusClient,
                                           tenant_user: Factory) -> None:
    admin.create_tenant("acme", max_files=1)
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    alice = tenant_user("acme", "alice")
    alice.write("/tenants/acme/users/a", b"a")
    with pytest.raises(nexus.QuotaExceededError, match="files") as info:
        alice.write("/tenants/acme/users/b", b"b")
    assert info.value.code == "quota_exceeded"
    assert info.value.details["limit"] == 1


# -- changes apply at once --------------------------------------------------------------


def test_plan_change_applies_to_the_next_operation(admin: NexusClient,
                                                   tenant_user: Factory) -> None:
    admin.create_tenant("acme", plan="free")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    alice = tenant_user("acme", "alice")
    admin.update_tenant("acme", limits={"max_files": 2})
    alice.write("/tenants/acme/shared/1", b"1")
    alice.write("/tenants/acme/shared/2", b"2")
    with pytest.raises(nexus.QuotaExceededError):
        alice.write("/tenants/acme/shared/3", b"3")
    # Dropping the override restores the free plan's 1000 files at once.
    admin.update_tenant("acme", limits={})
    alice.write("/tenants/acme/shared/3", b"3")
    admin.update_tenant("acme", limits={"max_files": 3})
    with pytest.raises(nexus.QuotaExceededError):
        alice.write("/tenants/acme/shared/4", b"4")
    admin.update_tenant("acme", limits={"max_files": 4})
    alice.write("/tenants/acme/shared/4", b"4")
    admin.update_tenant("acme", limits={"max_files": 0})
    with pytest.raises(nexus.QuotaExceededError):
        alice.write("/tenants/acme/shared/5", b"5")
    # Deleting is always possible, even far over a limit.
    alice.delete("/tenants/acme/shared/4")
    assert admin.get_tenant("acme")["usage"]["files"] == 3


def test_upgrade_by_update_tenant_and_by_the_document(admin: NexusClient) -> None:
    admin.create_tenant("acme", plan="free")
    admin.create_tenant("beta", plan="free")
    for tenant in ("acme", "beta"):
        # Fill the free plan's user limit.
        for i in range(5):
            admin._call_rpc("admin_create_key", {"user_id": f"u{i}", "name": "k",
                                                 "tenant_id": tenant})
        with pytest.raises(nexus.QuotaExceededError):
            admin._call_rpc("admin_create_key", {"user_id": "u5", "name": "k",
                                                 "tenant_id": tenant})
    admin.update_tenant("acme", plan="pro")
    admin._call_rpc("admin_create_key", {"user_id": "u5", "name": "k", "tenant_id": "acme"})
    assert admin.get_tenant("acme")["limits"]["max_users"] == 50

    # Guide style: read the record, change plan and limits, write it back.
    doc = json.loads(admin.read("/tenants/beta/.tenant.json"))
    doc["plan"] = "pro"
    doc["limits"] = {"max_users": 50, "max_storage_gb": 500, "max_files": 50000,
                     "features": ["advanced_storage"]}
    admin.write("/tenants/beta/.tenant.json", json.dumps(doc).encode())
    admin._call_rpc("admin_create_key", {"user_id": "u5", "name": "k", "tenant_id": "beta"})
    assert admin.get_tenant("beta")["plan"] == "pro"
    # And back down through the document: the next user is refused again.
    doc = json.loads(admin.read("/tenants/beta/.tenant.json"))
    doc["plan"] = "free"
    doc["limits"] = {"max_users": 6}
    admin.write("/tenants/beta/.tenant.json", json.dumps(doc).encode())
    with pytest.raises(nexus.QuotaExceededError, match="users"):
        admin._call_rpc("admin_create_key", {"user_id": "u6", "name": "k",
                                             "tenant_id": "beta"})


def test_storage_override_through_the_document(admin: NexusClient) -> None:
    admin.create_tenant("acme")
    doc = json.loads(admin.read("/tenants/acme/.tenant.json"))
    doc["limits"]["max_storage_gb"] = 100 / GIB
    admin.write("/tenants/acme/.tenant.json", json.dumps(doc).encode())
    admin.write("/tenants/acme/a", b"a" * 100)
    with pytest.raises(nexus.QuotaExceededError, match="storage"):
        admin.write("/tenants/acme/b", b"b")
    doc = json.loads(admin.read("/tenants/acme/.tenant.json"))
    doc["limits"]["max_storage_gb"] = 101 / GIB
    admin.write("/tenants/acme/.tenant.json", json.dumps(doc).encode())
    admin.write("/tenants/acme/b", b"b")
    assert admin.get_tenant("acme")["usage"]["storage_bytes"] == 101
