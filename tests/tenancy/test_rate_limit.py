"""Per-tenant rate limits (token buckets) at admission, over HTTP (429 + Retry-After),
and the API-call counters they feed."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from starlette.testclient import TestClient

import nexus
from nexus.client import NexusClient
from nexus.service import AccessGate, NexusService, TenantService
from nexus.service.rate_limits import SharedRateLimiter
from nexus.service.tenant_state import TenantStates
from nexus.tenancy import PLANS, RateLimiter
from nexus.types import Principal

#: A fixture that makes clients (``tenant_user``, ``connect_as``).
Factory = Callable[..., NexusClient]

T = TypeVar("T")
FREE, PRO = PLANS["free"], PLANS["pro"]
ADMIN = Principal.local_admin()


class FakeClock:
    """Wall and monotonic clocks that move only when told. The wall clock starts at the
    real time (days are real days); the monotonic one at 0 (no float rounding of
    sub-second steps on top of 1.8e9 seconds)."""

    def __init__(self) -> None:
        self.start = time.time()
        self.elapsed = 0.0

    def __call__(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _build(cls: type[T], available: dict[str, Any]) -> T:
    """``cls(**...)`` from the ``available`` collaborators its constructor names (the
    composition root grows collaborators; the test should not have to follow)."""
    params = inspect.signature(cls).parameters
    missing = [name for name, p in params.items()
               if p.default is p.empty and name not in available]
    if missing:
        pytest.fail(f"{cls.__name__} needs {missing}; teach the test where to find them")
    return cls(**{name: value for name, value in available.items() if name in params})


@pytest.fixture
def gate(service: NexusService, clock: FakeClock) -> TenantService:
    """A tenant gate over the service's database with a fake clock everywhere (a fresh
    state cache, so changes by ``service.tenants`` are seen at once)."""
    shared = {name: getattr(service, name) for name in ("db", "audit") if hasattr(service, name)}
    access = _build(AccessGate, {**shared, "engine": service.permissions})
    return _build(TenantService, {
        **shared, "gate": access, "states": TenantStates(service.db, ttl=0, clock=clock),
        "clock": clock, "limiter": SharedRateLimiter(service.db, clock=clock)})


def _burst(admit: Callable[[], None], attempts: int) -> tuple[int, list[nexus.RateLimitedError]]:
    admitted, refused = 0, []
    for _ in range(attempts):
        try:
            admit()
        except nexus.RateLimitedError as exc:
            refused.append(exc)
        else:
            admitted += 1
    return admitted, refused


# -- the bucket -------------------------------------------------------------------------


@pytest.fixture(params=["in-process", "shared"])
def limiter(request: pytest.FixtureRequest, clock: FakeClock, service: NexusService) -> Any:
    """The rule alone (one process's buckets) and the server's buckets in the database
    (on each backend): the same answers for the same calls."""
    if request.param == "in-process":
        return RateLimiter(clock=clock.monotonic)
    return SharedRateLimiter(service.db, clock=clock)


def test_rate_limiter_token_bucket(clock: FakeClock, limiter: Any) -> None:
    assert [limiter.admit("a", 10.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.admit("a", 10.0, 3)
    assert wait == pytest.approx(0.1)
    assert limiter.admit("b", 10.0, 3) == 0.0        # buckets are per key
    clock.advance(0.05)
    assert limiter.admit("a", 10.0, 3) == pytest.approx(0.05)  # half a token so far
    clock.advance(0.051)
    assert limiter.admit("a", 10.0, 3) == 0.0
    assert limiter.admit("a", 10.0, 3) > 0
    clock.advance(3600)                              # refills up to the burst, no more
    assert [limiter.admit("a", 10.0, 3) for _ in range(4)].count(0.0) == 3
    assert limiter.admit("z", 0.0, 0) > 0            # a zero rate never admits


# -- admission --------------------------------------------------------------------------


def test_a_tenant_beyond_its_burst_is_refused_others_are_not(
        admin: NexusClient, gate: TenantService, clock: FakeClock) -> None:
    admin.create_tenant("acme", plan="free")
    admin.create_tenant("beta", plan="free")
    alice, bob = Principal("alice", "acme"), Principal("bob", "beta")
    admitted, refused = _burst(lambda: gate.admit(alice), FREE.burst + 10)
    assert admitted == FREE.burst and len(refused) == 10
    assert all(e.code == "rate_limited" and e.details["retry_after"] >= 1 for e in refused)
    assert "retry" in str(refused[0]).lower()
    # Another tenant in the same instant, and a second user of the limited tenant.
    gate.admit(bob)
    with pytest.raises(nexus.RateLimitedError):
        gate.admit(Principal("carol", "acme"))
    # The system administrator is never limited.
    for _ in range(3 * FREE.burst):
        gate.admit(ADMIN)
    # Refill: 1 / rate seconds buys one request; a long pause buys the burst, no more.
    clock.advance(1.01 / FREE.rate_per_second)
    gate.admit(alice)
    with pytest.raises(nexus.RateLimitedError):
        gate.admit(alice)
    clock.advance(60)
    assert _burst(lambda: gate.admit(alice), FREE.burst + 5)[0] == FREE.burst


def test_upgrade_raises_the_rate_at_once(admin: NexusClient, gate: TenantService,
                                         clock: FakeClock) -> None:
    admin.create_tenant("acme", plan="free")
    alice = Principal("alice", "acme")
    assert _burst(lambda: gate.admit(alice), FREE.burst + 1)[0] == FREE.burst
    admin.update_tenant("acme", plan="pro")
    clock.advance(10)
    assert _burst(lambda: gate.admit(alice), PRO.burst + 1)[0] == PRO.burst


def test_blocked_or_unknown_tenants_are_refused_before_the_limiter(
        admin: NexusClient, gate: TenantService) -> None:
    admin.create_tenant("acme", plan="free")
    admin.suspend_tenant("acme", "Payment overdue")
    for _ in range(FREE.burst + 5):
        with pytest.raises(nexus.TenantSuspendedError):
            gate.admit(Principal("alice", "acme"))
    with pytest.raises(nexus.TenantSuspendedError):
        gate.admit(Principal("alice", "ghost"))
    admin.reactivate_tenant("acme")
    # Refused requests took no tokens.
    assert _burst(lambda: gate.admit(Principal("alice", "acme")), FREE.burst)[0] == FREE.burst


def test_real_service_admission(admin: NexusClient, service: NexusService) -> None:
    admin.create_tenant("acme", plan="free")
    admin.create_tenant("beta", plan="free")
    started = time.monotonic()
    admitted, refused = _burst(lambda: service.tenants.admit(Principal("a", "acme")),
                               FREE.burst * 2)
    elapsed = time.monotonic() - started
    assert refused, "a free tenant sustained twice its burst"
    assert admitted <= FREE.burst + int(elapsed * FREE.rate_per_second) + 1
    service.tenants.admit(Principal("b", "beta"))
    time.sleep(2 / FREE.rate_per_second + 0.05)
    service.tenants.admit(Principal("a", "acme"))


# -- over HTTP --------------------------------------------------------------------------


def _rpc(client: TestClient, key: str, path: str) -> Any:
    return client.post("/api/nfs/exists", headers={"Authorization": f"Bearer {key}"},
                       json={"jsonrpc": "2.0", "method": "exists", "id": 1,
                             "params": {"path": path}})


def test_http_answers_429_with_retry_after(service: NexusService, app: Any,
                                           clock: FakeClock) -> None:
    # The server's buckets on a clock that stands still: a slow machine refills nothing
    # between the requests, so the burst is exactly the plan's.
    service.tenants._limiter = SharedRateLimiter(service.db, clock=clock)  # noqa: SLF001
    keys = {}
    for tenant, user in (("acme", "alice"), ("beta", "bob")):
        service.tenants.create_tenant(ADMIN, tenant, plan="free")
        service.rebac.rebac_create(ADMIN, ("user", user), "owner",
                                   ("file", f"/tenants/{tenant}"))
        keys[tenant] = service.keys.admin_create_key(ADMIN, user, user,
                                                     tenant_id=tenant)["api_key"]
    client = TestClient(app)
    statuses = []
    limited = None
    for _ in range(FREE.burst * 2):
        response = _rpc(client, keys["acme"], "/tenants/acme/shared")
        statuses.append(response.status_code)
        if response.status_code == 429:
            limited = response
            break
    assert statuses[0] == 200 and set(statuses) <= {200, 429}
    assert limited is not None, "no request was rate limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["data"]["code"] == "rate_limited"
    # The other tenant, at the same moment, and the content route of the limited one.
    assert _rpc(client, keys["beta"], "/tenants/beta/shared").status_code == 200
    downloads = [client.get("/api/fs/content", params={"path": "/tenants/acme/x"},
                            headers={"Authorization": f"Bearer {keys['acme']}"})
                 for _ in range(5)]
    assert {d.status_code for d in downloads} <= {404, 429}
    assert any(d.status_code == 429 and "Retry-After" in d.headers for d in downloads)
    assert statuses.count(200) == FREE.burst
    clock.advance(2 / FREE.rate_per_second)
    assert _rpc(client, keys["acme"], "/tenants/acme/shared").status_code == 200


# -- API-call counting ------------------------------------------------------------------


def test_admitted_calls_are_counted_refused_ones_are_not(
        admin: NexusClient, gate: TenantService, clock: FakeClock) -> None:
    admin.create_tenant("acme", plan="free")
    admin.create_tenant("beta", plan="free")
    admitted, refused = _burst(lambda: gate.admit(Principal("a", "acme")), FREE.burst + 7)
    gate.admit(Principal("b", "beta"))
    gate.admit(ADMIN)
    gate.flush_api_calls()
    assert admin.get_tenant("acme")["usage"]["api_calls"] == admitted == FREE.burst
    assert admin.get_tenant("beta")["usage"]["api_calls"] == 1
    assert admin.billing_preview("acme")["metered"]["api_calls"] == FREE.burst
    gate.flush_api_calls()  # nothing pending: nothing changes
    assert admin.get_tenant("acme")["usage"]["api_calls"] == FREE.burst


def test_client_calls_are_counted(admin: NexusClient, tenant_user: Factory,
                                  service: NexusService) -> None:
    admin.create_tenant("acme", plan="pro")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    alice = tenant_user("acme", "alice")
    alice.write("/tenants/acme/shared/a", b"a")
    alice.read("/tenants/acme/shared/a")
    alice.list("/tenants/acme/shared")
    with pytest.raises(nexus.NexusFileNotFoundError):
        alice.read("/tenants/acme/shared/missing")   # admitted, then failed: counted
    admin.list("/tenants/acme")                       # the administrator's are not
    service.tenants.flush_api_calls()
    assert admin.get_tenant("acme")["usage"]["api_calls"] == 4
    assert admin.get_usage("acme")["usage"]["api_calls"] == 4


def test_deleted_tenants_buffered_calls_do_not_leak_into_a_new_one(
        admin: NexusClient, gate: TenantService) -> None:
    admin.create_tenant("acme", plan="free")
    for _ in range(5):
        gate.admit(Principal("a", "acme"))  # the first flushes, four stay buffered
    admin.delete_tenant("acme", confirm=True)
    gate.flush_api_calls()
    admin.create_tenant("acme", plan="free")
    assert admin.get_tenant("acme")["usage"]["api_calls"] == 0
    assert admin.billing_preview("acme")["metered"]["api_calls"] == 0
