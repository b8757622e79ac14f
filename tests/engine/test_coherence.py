"""Another process's caches learn of a change from its event, not from their ttl.

"Another process" is a second set of caches over its own connection pool, with a ttl
of an hour: if a test passes, the event did it. PostgreSQL delivers events to a thread,
so assertions there wait (with a deadline) for the effect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

import nexus
from nexus.client import NexusClient
from nexus.service import NexusService
from nexus.service.coherence import Coherence, PolledCoherence, coherence_for
from nexus.service.permissions import RevisionTracker
from nexus.service.tenant_state import TenantStates
from nexus.store import Database
from nexus.store.changes import ChangeLog, publish

HOUR = 3600.0


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the change never reached the other process"
        time.sleep(0.005)


@dataclass
class Elsewhere:
    """The caches of another process of the same deployment."""

    db: Database
    coherence: Coherence
    states: TenantStates
    revisions: RevisionTracker


@pytest.fixture
def elsewhere(service: NexusService) -> Iterator[Elsewhere]:
    db = Database(service.db.url)
    coherence = coherence_for(db)
    states = TenantStates(db, ttl=HOUR, coherence=coherence)
    revisions = RevisionTracker(db, ttl=HOUR, coherence=coherence)
    coherence.start()
    yield Elsewhere(db, coherence, states, revisions)
    coherence.close()
    db.dispose()


def status(states: TenantStates, tenant: str) -> str | None:
    state = states.get(tenant)
    return None if state is None else state.status


def test_a_suspension_reaches_the_other_process(elsewhere: Elsewhere,
                                                admin: NexusClient) -> None:
    admin.create_tenant("acme", plan="pro")
    assert status(elsewhere.states, "acme") == "active"  # cached for an hour
    admin.suspend_tenant("acme", reason="unpaid")
    eventually(lambda: status(elsewhere.states, "acme") == "suspended")
    admin.reactivate_tenant("acme")
    eventually(lambda: status(elsewhere.states, "acme") == "active")


def test_a_created_and_a_deleted_tenant_reach_the_other_process(
        elsewhere: Elsewhere, admin: NexusClient) -> None:
    assert elsewhere.states.get("globex") is None  # "no such tenant", cached
    admin.create_tenant("globex")
    eventually(lambda: elsewhere.states.get("globex") is not None)
    first = elsewhere.states.incarnation("globex")
    admin.delete_tenant("globex", confirm=True)
    eventually(lambda: elsewhere.states.get("globex") is None)
    admin.create_tenant("globex")  # the same name, a new life
    eventually(lambda: elsewhere.states.incarnation("globex") not in (None, first))


def test_a_grant_and_its_removal_move_the_other_process_revision(
        elsewhere: Elsewhere, admin: NexusClient) -> None:
    admin.create_tenant("acme")
    before = elsewhere.revisions.current("acme")
    grant = admin.rebac_create(("user", "alice"), "can_read", ("file", "/tenants/acme/x"))
    eventually(lambda: elsewhere.revisions.current("acme") > before)
    granted = elsewhere.revisions.current("acme")
    admin.rebac_delete(grant)
    eventually(lambda: elsewhere.revisions.current("acme") > granted)


def test_a_lost_listener_connection_resets_every_cache(
        backend: str, elsewhere: Elsewhere, admin: NexusClient) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no listener connection (it polls)")
    admin.create_tenant("acme")
    assert status(elsewhere.states, "acme") == "active"
    resets = elsewhere.coherence.resets
    with elsewhere.db.engine.begin() as conn:  # the server side drops the listener
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"))
    eventually(lambda: elsewhere.coherence.resets > resets and elsewhere.coherence.connected)
    # A change made while it was away is not lost: everything was forgotten on return.
    admin.suspend_tenant("acme")
    eventually(lambda: status(elsewhere.states, "acme") == "suspended")


def test_a_poller_that_fell_behind_the_pruned_log_forgets_everything(
        backend: str, service: NexusService) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL sends events; only SQLite keeps them in a table")
    now = [0.0]
    poller = PolledCoherence(service.db, interval=0.0, batch=10, clock=lambda: now[0])
    forgotten: list[str] = []
    poller.subscribe(lambda _kind, tenant: forgotten.append(tenant),
                     lambda: forgotten.append("*"))
    poller.start()
    with service.db.engine.begin() as conn:
        publish(conn, "tenant", "acme")
    poller.sync()
    assert forgotten == ["acme"]
    with service.db.engine.begin() as conn:  # more than one batch behind
        for i in range(12):
            publish(conn, "tenant", f"t{i}")
    poller.sync()
    assert forgotten[-1] == "*"
    with service.db.engine.begin() as conn:
        publish(conn, "tuples", "beta")
        seen = ChangeLog(conn).latest()
    poller.sync()
    assert forgotten[-1] == "beta" and poller._seen == seen


def test_a_recreated_tenant_never_inherits_a_cached_answer(admin: NexusClient,
                                                          tenant_user) -> None:
    """A share into beta, cached as allowed, must not survive acme's deletion and
    re-creation, whatever revision the new acme's tuples reach: the cache key holds the
    tenant's incarnation."""
    doc = "/tenants/acme/plan.txt"
    admin.create_tenant("acme")
    admin.create_tenant("beta")
    admin.rebac_create(("user", "alice"), "owner", ("file", "/tenants/acme"))
    alice, bob = tenant_user("acme", "alice"), tenant_user("beta", "bob")
    alice.write(doc, b"old life")
    alice.create_share(doc, "beta", permission="can_read", expires_in_days=1)
    assert bob.read(doc) == b"old life"  # the answer is now cached
    admin.delete_tenant("acme", confirm=True)
    admin.create_tenant("acme")
    admin.write(doc, b"new life, not shared")
    with pytest.raises(nexus.NexusPermissionError):
        bob.read(doc)
