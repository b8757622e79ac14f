"""Authorization denial of service (issue 14, "Budgets, not hopes"): a batch over the cap
is refused with a clear 4xx and its limit, a batch costs its tenant one rate-limit token
per item, and listings come in pages of at most 1,000 — on both databases and, where a
client can reach it, both transports."""

from __future__ import annotations

from typing import Any

import pytest

import nexus
import nexus.client._async_client as async_client_module
import nexus.client._client as client_module
from nexus.service import NexusService, RebacService, TenantService
from nexus.service import rebac as rebac_module
from nexus.service.permissions import RevisionTracker
from nexus.service.rate_limits import SharedRateLimiter
from nexus.service.tenant_state import TenantStates
from nexus.tenancy import PLANS, RateLimiter
from nexus.types import Principal


def test_check_batch_over_the_cap_is_refused(admin) -> None:  # noqa: ANN001
    admin.mkdir("/tenants/dosco")
    doc = ("file", "/tenants/dosco")
    item = (("user", "alice"), "can_read", doc)
    assert admin.rebac_check_batch([item] * 1_000) == [False] * 1_000
    with pytest.raises(nexus.LimitExceededError) as info:
        admin.rebac_check_batch([item] * 1_001)
    assert info.value.code == "limit_exceeded"
    assert int(info.value.details["limit"]) == 1_000


# -- a batch is charged per item -----------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["in-process", "shared"])
def limited(request: pytest.FixtureRequest, service: NexusService) -> tuple[Any, _Clock]:
    """A limiter on a fake clock: the rule alone, and the server's shared buckets in the
    database of each backend."""
    clock = _Clock()
    if request.param == "in-process":
        return RateLimiter(clock=clock), clock
    return SharedRateLimiter(service.db, clock=clock), clock


def test_limiter_charges_a_batch_per_item_and_lets_a_full_bucket_go_into_debt(
        limited: tuple[Any, _Clock]) -> None:
    limiter, clock = limited
    rate, burst = 20.0, 40
    assert limiter.admit("t", rate, burst) == 0.0               # the call's admission
    assert limiter.admit("t", rate, burst, 999, paid=1) == 0.0  # and its other 999 items
    wait = limiter.admit("t", rate, burst)                      # the debt is repaid first
    assert wait == pytest.approx((1_000 - 40 + 1) / rate)
    clock.now += wait - 0.1
    assert limiter.admit("t", rate, burst) > 0
    clock.now += 0.2
    assert limiter.admit("t", rate, burst) == 0.0


def test_limiter_refuses_a_batch_the_bucket_cannot_pay_and_takes_nothing(
        limited: tuple[Any, _Clock]) -> None:
    limiter, clock = limited
    for _ in range(30):
        assert limiter.admit("t", 20.0, 40) == 0.0
    assert limiter.admit("t", 20.0, 40, 500, paid=1) > 0  # 10 left, a full bucket needed
    assert [limiter.admit("t", 20.0, 40) for _ in range(10)] == [0.0] * 10
    assert limiter.admit("t", 20.0, 40) > 0


def _wired_rebac(service: NexusService) -> tuple[RebacService, TenantService, _Clock]:
    """The rebac service charging a tenant gate whose limiter runs on a fake clock."""
    clock = _Clock()
    tenants = TenantService(db=service.db, gate=service.policy,
                            states=TenantStates(service.db, ttl=0), audit=service.audit,
                            limiter=SharedRateLimiter(service.db, clock=clock))
    rebac = RebacService(db=service.db, engine=service.permissions,
                         revisions=RevisionTracker(service.db), audit=service.audit,
                         gate=service.policy, charge=tenants.charge_rate)
    return rebac, tenants, clock


def test_a_batch_of_1000_costs_a_free_tenant_1000_requests(service: NexusService) -> None:
    admin = Principal.local_admin()
    service.tenants.create_tenant(admin, "batchco", plan="free")
    service.rebac.rebac_create(admin, ("user", "alice"), "viewer", ("file", "/tenants/batchco"))
    rebac, tenants, clock = _wired_rebac(service)
    alice = Principal("alice", "batchco")
    item = (("user", "alice"), "can_read", ("file", "/tenants/batchco"))
    free = PLANS["free"]
    tenants.admit(alice)
    assert rebac.rebac_check_batch(alice, [item] * 1_000) == [True] * 1_000
    # 1,000 tokens taken: the tenant waits for them as for 1,000 single calls.
    with pytest.raises(nexus.RateLimitedError) as info:
        tenants.admit(alice)
    assert info.value.details["retry_after"] >= (1_000 - free.burst) / free.rate_per_second
    clock.now += (1_000 - free.burst + 1) / free.rate_per_second + 0.01
    tenants.admit(alice)
    # With only part of the bucket left, a big batch is refused before any work.
    clock.now += free.burst / free.rate_per_second  # a full bucket again
    for _ in range(free.burst // 2):
        tenants.admit(alice)
    with pytest.raises(nexus.RateLimitedError) as info:
        rebac.rebac_check_batch(alice, [item] * 1_000)
    assert info.value.details["cost"] == 1_000
    # Small batches still fit, and the system administrator is never charged.
    assert rebac.rebac_check_batch(alice, [item] * 3) == [True] * 3
    assert rebac.rebac_check_batch(admin, [item] * 1_000) == [True] * 1_000


def test_a_batch_through_the_api_is_charged_per_item(admin, tenant_user) -> None:  # noqa: ANN001
    admin.create_tenant("apico", plan="free")
    alice = tenant_user("apico", "alice")
    item = (("user", "alice"), "can_read", ("file", "/tenants/apico"))
    alice.rebac_check_batch([item] * 1_000)
    with pytest.raises(nexus.RateLimitedError):
        alice.exists("/tenants/apico")


# -- listings are pages of at most 1,000 ---------------------------------------------------


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """The listing cap at 3 instead of 1,000, so that "more than a page" is 4 rows (and
    the client's page the same size: it walks the pages for a caller who passes no limit)."""
    monkeypatch.setattr(rebac_module, "MAX_LIST_ITEMS", 3)
    monkeypatch.setattr(client_module, "PAGE", 3)
    monkeypatch.setattr(async_client_module, "PAGE", 3)
    return 3


def test_list_tuples_pages_and_refuses_an_unpaged_overflow(admin, small_pages) -> None:  # noqa: ANN001
    admin.create_tenant("pageco")
    for user in ("u1", "u2", "u3"):
        admin.rebac_create(("user", user), "viewer", ("file", "/tenants/pageco"))
    assert len(admin.rebac_list_tuples(tenant_id="pageco")) == 3  # exactly a page: fine
    admin.rebac_create(("user", "u4"), "viewer", ("file", "/tenants/pageco"))
    admin.rebac_create(("user", "u5"), "viewer", ("file", "/tenants/pageco"))
    with pytest.raises(nexus.LimitExceededError) as info:  # the server: one page a call
        admin._call_rpc("rebac_list_tuples", {"tenant_id": "pageco"})
    assert "page" in str(info.value) and int(info.value.details["limit"]) == 3
    # The SDK without a limit: every tuple, fetched a page at a time.
    walked = admin.rebac_list_tuples(tenant_id="pageco")
    assert sorted(t["subject_id"] for t in walked) == ["u1", "u2", "u3", "u4", "u5"]
    seen, after = [], None
    while True:
        page = admin._call_rpc("rebac_list_tuples", {"tenant_id": "pageco", "limit": 2,
                                                     "after": after})
        seen += page
        if len(page) < 2:
            break
        after = page[-1]["tuple_id"]
    assert sorted(t["subject_id"] for t in seen) == ["u1", "u2", "u3", "u4", "u5"]
    assert len({t["tuple_id"] for t in seen}) == 5
    with pytest.raises(nexus.LimitExceededError):
        admin._call_rpc("rebac_list_tuples", {"tenant_id": "pageco", "limit": 4})
    with pytest.raises(nexus.InvalidArgumentError):
        admin._call_rpc("rebac_list_tuples", {"tenant_id": "pageco", "limit": 0})


def test_list_objects_and_subjects_page(admin, small_pages) -> None:  # noqa: ANN001
    admin.create_tenant("listco")
    root = "/tenants/listco/p"
    for name in ("a", "b", "c", "d"):
        admin.write(f"{root}/{name}", b"x")
        admin.rebac_create(("user", f"u{name}"), "viewer", ("file", f"{root}/a"))
    admin.rebac_create(("user", "bob"), "viewer", ("file", root))
    with pytest.raises(nexus.LimitExceededError):
        admin._call_rpc("rebac_list_objects", {
            "subject": ["user", "bob"], "permission": "can_read", "object_type": "file",
            "tenant_id": "listco"})
    assert admin.rebac_list_objects(("user", "bob"), "can_read", "file",
                                    tenant_id="listco") == [root, *(f"{root}/{n}" for n in "abcd")]
    first = admin._call_rpc("rebac_list_objects", {
        "subject": ["user", "bob"], "permission": "can_read", "object_type": "file",
        "tenant_id": "listco", "limit": 3})
    rest = admin._call_rpc("rebac_list_objects", {
        "subject": ["user", "bob"], "permission": "can_read", "object_type": "file",
        "tenant_id": "listco", "limit": 3, "after": first[-1]})
    assert first + rest == [root, *(f"{root}/{n}" for n in "abcd")]
    with pytest.raises(nexus.LimitExceededError):
        admin._call_rpc("rebac_list_subjects", {"object": ["file", f"{root}/a"],
                                                "permission": "can_read"})
    assert len(admin.rebac_list_subjects(("file", f"{root}/a"), "can_read")) == 5
    subjects = admin._call_rpc("rebac_list_subjects", {
        "object": ["file", f"{root}/a"], "permission": "can_read", "limit": 3,
        "after": "user:bob"})
    assert subjects == [["user", "ua"], ["user", "ub"], ["user", "uc"]]
