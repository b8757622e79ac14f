"""A change made through replica A takes effect on B and C within 100 ms (p99).

For each kind of change — a key revoked, a tenant suspended, a tenant's model changed, a
share revoked, a grant removed — ``REPS`` times: the old state is set up and seen to be
in force on B and C (their caches warm, as in production), the change is made through
A, and from the moment A acknowledges it, B and C are polled (one thread each) until
each refuses what the change forbids. The delay of a repetition is the later of the
two; with 20 repetitions the p99 (nearest rank) is the largest of them.

This is the design's bound (docs/deployment.md: caches and per-tenant state propagate
through LISTEN/NOTIFY). A change that has not reached a replica after ``GIVE_UP`` seconds
counts as ``GIVE_UP`` and fails the test all the same.

Two judgements of the same measurement. The default suite shares two cores with a dozen
other servers, where one scheduling hiccup in twenty repetitions sets the p99, so there
every change must arrive well inside the 1 s cache lifetime (the event, not the expiry,
did it: ``BY_EVENT``) and the median must meet the bound. ``-m slow``, run on a quiet
machine, holds the p99 itself to the bound; its figures are the ones the docs quote.

Coherence never touches the blob store, so the default suite runs this over the shared
directory only; the S3 deployment (six seconds of set-up) is under ``-m slow``.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

import nexus
from nexus.authz import default_model_text
from nexus.client import NexusClient
from tests.serving import tenant_key

from .conftest import Report
from .harness import Deployment

REPS = 20
BOUND = 0.100  # seconds, p99
BY_EVENT = 0.5  # seconds: half the 1 s lifetime a cache entry would otherwise live
GIVE_UP = 5.0  # seconds a replica is polled for one change before it counts as never
SETTLE = 10.0  # seconds the old state gets to be in force on B and C before a repetition
INTERVAL = 0.002  # between two probes of one replica

#: A refusal probe: True once the replica refuses (the change is in force there), False
#: while it still allows; any other outcome is an error of the test.
Probe = Callable[[NexusClient], bool]

_CAN_READ = ("define can_read: [user, user:*, group#member, tenant#member] or viewer or "
             "can_read from parent")
#: Two models of one tenant that differ only in whether ``blocked`` takes reading away
#: (both define it, so the tuple naming it stays valid across the switch).
OPEN_MODEL = default_model_text().replace(_CAN_READ, f"define blocked: [user]\n    {_CAN_READ}")
BLOCKING_MODEL = default_model_text().replace(
    _CAN_READ, "define blocked: [user]\n    define can_read: ([user, user:*, group#member, "
               "tenant#member] or viewer or can_read from parent) but not blocked")


def refused(call: Callable[[NexusClient], object], *errors: type[Exception]) -> Probe:
    def probe(client: NexusClient) -> bool:
        try:
            call(client)
        except errors:
            return True
        return False
    return probe


@dataclass
class Scenario:
    """One kind of change. ``prepare`` sets the old state up through A and returns the
    per-replica clients the probe uses; ``change`` makes the change through A;
    ``restore`` undoes it through A (the next ``prepare`` waits until that is seen)."""

    prepare: Callable[[], list[NexusClient]]
    change: Callable[[], object]
    probe: Probe
    restore: Callable[[], object] = lambda: None


def _observe(clients: list[NexusClient], probe: Probe, *, want: bool,
             give_up: float = GIVE_UP) -> list[float]:
    """Seconds until each client's probe says ``want``, polled in parallel (``give_up``
    if never)."""
    started = time.perf_counter()

    def one(client: NexusClient) -> float:
        while probe(client) != want:
            if time.perf_counter() - started > give_up:
                return give_up
            time.sleep(INTERVAL)
        return time.perf_counter() - started

    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(one, clients))


def _measure(scenario: Scenario) -> list[tuple[float, ...]]:
    delays: list[tuple[float, ...]] = []
    for _ in range(REPS):
        observers = scenario.prepare()
        try:
            # The old state is in force on every observer (and their caches hold it).
            settled = _observe(observers, scenario.probe, want=False, give_up=SETTLE)
            assert max(settled) < SETTLE, f"the old state never reached B and C: {settled}"
            scenario.change()
            delays.append(tuple(_observe(observers, scenario.probe, want=True)))
            scenario.restore()
        finally:
            for client in observers:
                client.close()
    return delays


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _distribution(delays: list[tuple[float, ...]]) -> str:
    worst = [max(d) for d in delays]
    per = " | ".join(f"{name}: " + " ".join(f"{d[i] * 1000:.0f}" for d in delays)
                     for i, name in enumerate("BC"))
    return (f"p50 {statistics.median(worst) * 1000:.1f} ms, p90 "
            f"{_nearest_rank(worst, 0.9) * 1000:.1f} ms, p99 "
            f"{_nearest_rank(worst, 0.99) * 1000:.1f} ms, max {max(worst) * 1000:.1f} ms "
            f"over {len(delays)} changes (ms per replica — {per})")


# -- the scenarios ---------------------------------------------------------------------


class World:
    """Tenants and keys of one deployment for the scenarios (each its own tenants)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.admin = deployment.client(0)  # every change goes through A

    def tenant(self, name: str) -> tuple[str, str]:
        """A new tenant (unique name) and its owner's key."""
        tenant = f"{name}{uuid.uuid4().hex[:6]}"
        self.admin.create_tenant(tenant, plan="enterprise")
        return tenant, tenant_key(self.admin, tenant, "owner", owner=True)

    def observers(self, api_key: str) -> list[NexusClient]:
        """Clients of B and C with ``api_key``."""
        return [self.deployment.client(i, api_key, timeout=10)
                for i in range(1, len(self.deployment.replicas))]

    def key_revocation(self) -> Scenario:
        tenant, _ = self.tenant("keys")
        self.admin.rebac_create(("user", "holder"), "can_read", ("file", f"/tenants/{tenant}"),
                                tenant_id=tenant)
        made: list[str] = []

        def prepare() -> list[NexusClient]:
            answer = self.admin._call_rpc("admin_create_key", {
                "user_id": "holder", "name": "holder", "tenant_id": tenant})
            made[:] = [answer["key_id"]]
            return self.observers(answer["api_key"])

        return Scenario(prepare, lambda: self.admin._call_rpc(
            "admin_revoke_key", {"key_id": made[0]}),
            refused(lambda c: c.list(f"/tenants/{tenant}"), nexus.AuthenticationError))

    def suspension(self) -> Scenario:
        tenant, key = self.tenant("susp")
        self.admin.write(f"/tenants/{tenant}/doc.txt", b"doc")
        return Scenario(lambda: self.observers(key),
                        lambda: self.admin.suspend_tenant(tenant, "propagation test"),
                        refused(lambda c: c.read(f"/tenants/{tenant}/doc.txt"),
                                nexus.TenantSuspendedError),
                        lambda: self.admin.reactivate_tenant(tenant))

    def model_change(self) -> Scenario:
        tenant, _ = self.tenant("model")
        doc = f"/tenants/{tenant}/shared/doc.txt"
        self.admin.write(doc, b"doc")
        self.admin.rebac_write_model(OPEN_MODEL, tenant_id=tenant)
        reader = tenant_key(self.admin, tenant, "dan")
        self.admin.rebac_create(("user", "dan"), "can_read", ("file", f"/tenants/{tenant}"),
                                tenant_id=tenant)
        self.admin.rebac_create(("user", "dan"), "blocked", ("file", doc), tenant_id=tenant)
        return Scenario(lambda: self.observers(reader),
                        lambda: self.admin.rebac_write_model(BLOCKING_MODEL, tenant_id=tenant),
                        refused(lambda c: c.read(doc), nexus.NexusPermissionError),
                        lambda: self.admin.rebac_write_model(OPEN_MODEL, tenant_id=tenant))

    def share_revocation(self) -> Scenario:
        source, owner = self.tenant("src")
        target, reader = self.tenant("dst")
        doc = f"/tenants/{source}/out/doc.txt"
        self.admin.write(doc, b"shared")
        sharer = self.deployment.client(0, owner)
        made: list[str] = []

        def prepare() -> list[NexusClient]:
            made[:] = [sharer.create_share(doc, target)["share_id"]]
            return self.observers(reader)

        return Scenario(prepare, lambda: sharer.revoke_share(made[0]),
                        refused(lambda c: c.read(doc), nexus.NexusPermissionError))

    def grant_removal(self) -> Scenario:
        tenant, _ = self.tenant("grant")
        doc = f"/tenants/{tenant}/doc.txt"
        self.admin.write(doc, b"granted")
        reader = tenant_key(self.admin, tenant, "gina")
        made: list[str] = []

        def prepare() -> list[NexusClient]:
            made[:] = [self.admin.rebac_create(("user", "gina"), "can_read", ("file", doc),
                                               tenant_id=tenant)]
            return self.observers(reader)

        return Scenario(prepare, lambda: self.admin.rebac_delete(made[0]),
                        refused(lambda c: c.read(doc), nexus.NexusPermissionError))


SCENARIOS = ("key_revocation", "suspension", "model_change", "share_revocation",
             "grant_removal")


@pytest.fixture(scope="module", params=["file", pytest.param("s3", marks=pytest.mark.slow)])
def blob_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def world(deployment: Deployment) -> Iterator[World]:
    made = World(deployment)
    yield made
    made.admin.close()


@pytest.mark.parametrize("judged", ["by_event", pytest.param("p99", marks=pytest.mark.slow)])
@pytest.mark.parametrize("kind", SCENARIOS)
def test_a_change_on_a_takes_effect_on_b_and_c_within_100_ms(
        world: World, kind: str, judged: str, propagation_report: Report,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="httpx")  # thousands of probe lines say nothing
    delays = _measure(getattr(world, kind)())
    summary = _distribution(delays)
    propagation_report(f"{kind} ({world.deployment.blobs.kind}): {summary}")
    worst = [max(d) for d in delays]
    if judged == "p99":
        p99 = _nearest_rank(worst, 0.99)
        assert p99 <= BOUND, f"{kind}: p99 {p99 * 1000:.1f} ms > {BOUND * 1000:.0f} ms; {summary}"
        return
    assert max(worst) < BY_EVENT, f"{kind}: a change took {max(worst) * 1000:.0f} ms; {summary}"
    median = statistics.median(worst)
    assert median <= BOUND, f"{kind}: p50 {median * 1000:.1f} ms > {BOUND * 1000:.0f} ms; {summary}"
