"""Stateful fuzz: random sequences of tenant, user, grant, share, suspension and file
operations over real HTTP, each principal with its own real API key, checked against
the reference model of ``stateful_model.py`` after every step.

Every call goes through :class:`nexus.client.NexusClient` over ``HTTPTransport`` with a
Starlette ``TestClient`` on ``create_app(service=…)``. Every rule asserts its own outcome
(success with the right result, or exactly the error class the model expects — refused
attempts by non-owners, cross-tenant self-grants and grants naming another tenant's
users included), and after each step an invariant compares what a bounded, rotating set
of principal × path pairs gets from ``read``/``stat``/``exists``/``list`` with the model,
in both directions: allowed → the right content; denied → the right error class.

Size: ``NEXUS_FUZZ_STEPS`` (rules executed per test; default 250 per backend in the
normal run, 100,000 in total for the ``slow`` run), ``NEXUS_FUZZ_CHECKS`` (invariant
probes per step, default 6). The world is rebuilt for every Hypothesis example: a fresh
SQLite data directory (on tmpfs when there is one), or PostgreSQL tables truncated and
re-bootstrapped.

    .venv/bin/python -m pytest tests/security/test_stateful.py -q -s
    NEXUS_FUZZ_STEPS=2000 .venv/bin/python -m pytest -m slow tests/security/test_stateful.py
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, seed
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from starlette.testclient import TestClient

from nexus.client import HTTPTransport, NexusClient
from nexus.errors import NexusError, NexusFileExistsError
from nexus.server import create_app
from nexus.service import bootstrap
from nexus.settings import Settings
from nexus.types import Principal

from .bola_world import scratch_directory, truncate_all
from .stateful_model import (
    FILES,
    GRANT_RELATIONS,
    SHARE_TARGETS,
    STEPS,
    Actor,
    Model,
    Outcome,
    Share,
    basename,
    err,
    ok,
    root,
    tenant_of,
    within,
)

ROOT = Principal.local_admin()
USER_POOL = ("alice", "bob", "carol", "dave")
MAX_TENANTS = 4
CI_STEPS = 250          # per backend: the default run of both backends takes ≈ 20 s
SLOW_STEPS = 100_000    # in total over both backends
CI_STEP_COUNT = 30      # steps per Hypothesis example
SLOW_STEP_COUNT = 50


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class NexusMachine(RuleBasedStateMachine):
    """One deployment per example; ``configure`` sets the class attributes."""

    backend: ClassVar[str] = "sqlite"
    pg_url: ClassVar[str | None] = None
    base_dir: ClassVar[Path] = Path(tempfile.gettempdir())
    checks_per_step: ClassVar[int] = 6
    label: ClassVar[str] = "fuzz"
    _examples: ClassVar[Iterator[int]] = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        STEPS.examples += 1
        self.data_dir = self.base_dir / f"example-{next(self._examples)}"
        if self.pg_url is not None:
            truncate_all(self.pg_url)
        self.service = bootstrap(Settings(data_dir=self.data_dir, database_url=self.pg_url))
        self.app = create_app(service=self.service)
        self.model = Model()
        self.clients: dict[Actor, NexusClient] = {}
        self._transports: list[TestClient] = []
        self.tenants: list[str] = []
        self.focus: list[str] = []
        self.step = 0
        self._cursor = {"direct": 0, "alias": 0, "focus": 0}
        self._names = itertools.count()
        self._before: dict[tuple[Actor, str, str], Outcome] = {}
        self.admin = Actor(None, "fuzz-admin")
        created = self.service.keys.admin_create_key(ROOT, self.admin.user, "fuzz admin",
                                                     is_admin=True)
        self._connect(self.admin, created["api_key"])
        for _ in range(2):
            self._new_tenant()
        for tenant in self.tenants:  # each starts with an owner holding a key
            created = self._expect(self.admin, self.model.create_user(self.admin, tenant),
                                   lambda c, t=tenant: self._create_key(c, t, "alice"))
            self._connect(Actor(tenant, "alice"), created["api_key"])
            for name in FILES[:2]:  # and two files
                payload = f"{name} of {tenant}".encode()
                target = root(tenant) + name
                self._expect(self.admin, self.model.write(self.admin, target, payload),
                             lambda c, p=target, d=payload: c.write(p, d))
            self._expect(self.admin, self.model.grant(self.admin, "alice", "owner", root(tenant)),
                         lambda c, t=tenant: c.rebac_create(("user", "alice"), "owner",
                                                            ("file", root(t))))

    def teardown(self) -> None:
        for client in self._transports:
            client.__exit__(None, None, None)
        self.service.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- plumbing ------------------------------------------------------------------------

    def _connect(self, actor: Actor, api_key: str) -> None:
        test_client = TestClient(self.app)
        test_client.__enter__()  # one event loop per client for the example's lifetime
        self._transports.append(test_client)
        self.clients[actor] = NexusClient(HTTPTransport("http://testserver", api_key,
                                                        client=test_client))

    def _create_key(self, client: NexusClient, tenant: str, user: str) -> dict[str, Any]:
        return client._call_rpc("admin_create_key", {"user_id": user, "name": f"{user} key",
                                                     "tenant_id": tenant})

    @property
    def actors(self) -> list[Actor]:
        return list(self.clients)

    def _begin(self, *focus: str) -> None:
        """Count a step; ``focus``: the paths it may change (the invariant looks there
        first, at the principal × path pairs whose expected answer the step changed)."""
        self.step += 1
        STEPS.steps += 1
        STEPS.by_test[self.label] = STEPS.by_test.get(self.label, 0) + 1
        related = itertools.chain.from_iterable(self._related(p) for p in focus if p)
        self.focus = list(dict.fromkeys(related))
        self._before = self._answers()

    def _related(self, path: str) -> list[str]:
        """``path``, up to two files below it, and its views through active aliases."""
        out = [path]
        out += sorted(f for f in self.model.files if f.startswith(path + "/"))[:2]
        for share in self.model.shares:
            if not share.revoked and within(path, share.path):
                alias = f"{root(share.target)}/shared/from-{share.source}"
                out += [alias, f"{alias}/{basename(share.path)}{path[len(share.path):]}"]
        return out

    def _answers(self) -> dict[tuple[Actor, str, str], Outcome]:
        """The model's answers on the focus paths, for every principal."""
        out = {}
        for path in self.focus:
            first = "list" if self.model.looks_like_dir(path) else "read"
            for op in (first, "stat"):
                expect = getattr(self.model, f"expect_{op}")
                for actor in self.actors:
                    out[(actor, path, op)] = expect(actor, path)
        return out

    def _expect(self, actor: Actor, expected: Outcome, call: Callable[[NexusClient], Any],
                check: Callable[[Any], Any] | None = None, what: str = "") -> Any:
        """Run ``call`` as ``actor``; its outcome must be ``expected`` (a value check on
        success by ``check``, which returns an error message or None)."""
        try:
            result = call(self.clients[actor])
        except NexusError as exc:
            actual: Outcome = err(type(exc))
            detail = f"{type(exc).__name__}: {exc}"
        else:
            actual = ok(result)
            detail = repr(result)[:300]
        STEPS.outcome("ok" if actual[0] == "ok" else actual[1].__name__)
        context = f"{what or getattr(call, '__name__', 'call')} as {actor.name}"
        if expected[0] != actual[0] or (expected[0] == "err" and expected[1] is not actual[1]):
            wanted = expected[1].__name__ if expected[0] == "err" else f"success {expected[1]!r}"
            raise AssertionError(f"{context}: expected {wanted}, got {detail}")
        if actual[0] == "ok" and check is not None:
            problem = check(actual[1])
            if problem:
                raise AssertionError(f"{context}: {problem}")
        return actual[1] if actual[0] == "ok" else None

    def _new_tenant(self) -> str:
        tenant = f"t{len(self.tenants)}"
        self._expect(self.admin, ok(), lambda c: c.create_tenant(tenant, plan="enterprise"),
                     what=f"create_tenant {tenant}")
        self._expect(self.admin, ok(), lambda c: c.mkdir(f"{root(tenant)}/shared/docs"),
                     what=f"mkdir {tenant}/shared/docs")
        self.model.add_tenant(tenant)
        self.tenants.append(tenant)
        return tenant

    def _draw_actor(self, data: st.DataObject, *, admin: bool = True,
                    able: Callable[[Actor], bool] | None = None) -> Actor:
        """Any principal, or — half of the time, when ``able`` is given and someone is —
        one the model says may do it (so that successes are as common as refusals)."""
        choices = self.actors if admin else [a for a in self.actors if not a.is_admin]
        if able is not None:
            capable = [a for a in choices if self.model.admit(a) is None and able(a)]
            if capable and data.draw(st.booleans(), label="an able actor"):
                choices = capable
        return data.draw(st.sampled_from(choices), label="actor")

    def _draw_admin_mostly(self, data: st.DataObject) -> Actor:
        if data.draw(st.integers(0, 3), label="not the administrator (2)") == 2:
            return self._draw_actor(data)
        return self.admin

    def _draw_tenant(self, data: st.DataObject, label: str = "tenant") -> str:
        return data.draw(st.sampled_from(self.tenants), label=label)

    def _payload(self, actor: Actor) -> bytes:
        return f"step {self.step} by {actor.name}".encode()

    # -- rules ---------------------------------------------------------------------------

    @rule(data=st.data())
    def create_tenant(self, data: st.DataObject) -> None:
        actor = self._draw_admin_mostly(data)
        self._begin()
        refused = self.model.admin_only(actor)
        if refused is not None:
            self._expect(actor, refused, lambda c: c.create_tenant("intruder", plan="free"),
                         what="create_tenant")
        elif len(self.tenants) >= MAX_TENANTS:
            existing = self._draw_tenant(data)
            self._expect(actor, err(NexusFileExistsError),
                         lambda c: c.create_tenant(existing, plan="enterprise"),
                         what=f"create_tenant {existing} again")
        else:
            self.focus = [root(self._new_tenant())]

    @rule(data=st.data())
    def create_user(self, data: st.DataObject) -> None:
        tenant = self._draw_tenant(data)
        actor = self._draw_actor(data, able=lambda a: self.model.is_tenant_admin(a, tenant))
        user = data.draw(st.sampled_from(USER_POOL), label="user")
        self._begin()
        created = self._expect(actor, self.model.create_user(actor, tenant),
                               lambda c: self._create_key(c, tenant, user),
                               what=f"admin_create_key {user}@{tenant}")
        if created is not None:
            self._connect(Actor(tenant, user), created["api_key"])

    @rule(data=st.data())
    def grant(self, data: st.DataObject) -> None:
        tenant = self._draw_tenant(data, "object tenant")
        path = root(tenant) + data.draw(st.sampled_from(SHARE_TARGETS), label="object")
        actor = self._draw_actor(data, able=lambda a: a.tenant in (None, tenant)
                                 and self.model.can(a, "owner", path))
        user = data.draw(st.sampled_from(USER_POOL), label="subject user")
        relation = data.draw(st.sampled_from(GRANT_RELATIONS), label="relation")
        self._begin(path)
        self._expect(actor, self.model.grant(actor, user, relation, path),
                     lambda c: c.rebac_create(("user", user), relation, ("file", path)),
                     what=f"rebac_create user:{user} {relation} {path}")

    @rule(data=st.data())
    def foreign_grant(self, data: st.DataObject) -> None:
        """A tenant's principal naming another tenant: a self-grant on its files (plain,
        as ``<tenant>/<user>``, with its own ``tenant_id``), or a grant on its own files to
        another tenant's user or members. Always refused, nothing changes."""
        actor = self._draw_actor(data, admin=False)
        assert actor.tenant is not None
        other = data.draw(st.sampled_from([t for t in self.tenants if t != actor.tenant]),
                          label="other tenant")
        relation = data.draw(st.sampled_from(GRANT_RELATIONS), label="relation")
        variant = data.draw(st.sampled_from(("self", "self-qualified", "self-tenant-id",
                                             "to-foreign-user", "to-foreign-tenant")),
                            label="variant")
        if variant.startswith("self"):
            path = root(other) + data.draw(st.sampled_from(SHARE_TARGETS), label="object")
            subject = ("user", actor.user) if variant != "self-qualified" \
                else ("user", f"{actor.tenant}/{actor.user}")
            tenant_id = actor.tenant if variant == "self-tenant-id" else None
        else:
            path = root(actor.tenant) + data.draw(st.sampled_from(SHARE_TARGETS),
                                                  label="object")
            subject = ("user", f"{other}/alice") if variant == "to-foreign-user" \
                else ("tenant", other)
            tenant_id = None
        self._begin(path)
        self._expect(actor, self.model.foreign_grant(actor),
                     lambda c: c.rebac_create(subject, relation, ("file", path),
                                              tenant_id=tenant_id),
                     what=f"rebac_create {subject} {relation} {path} tenant_id={tenant_id}")

    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        existing = sorted(self.model.grants)
        if existing and data.draw(st.booleans(), label="an existing grant"):
            user, relation, path = data.draw(st.sampled_from(existing), label="grant")
        else:
            path = root(self._draw_tenant(data)) + data.draw(st.sampled_from(SHARE_TARGETS),
                                                             label="object")
            user = data.draw(st.sampled_from(USER_POOL), label="subject user")
            relation = data.draw(st.sampled_from(GRANT_RELATIONS), label="relation")
        actor = self._draw_actor(data, able=lambda a: a.tenant in (None, tenant_of(path))
                                 and self.model.can(a, "owner", path))
        self._begin(path)
        expected = self.model.revoke(actor, user, relation, path)
        self._expect(actor, expected,
                     lambda c: c.rebac_delete(subject=("user", user), relation=relation,
                                              object=("file", path)),
                     check=lambda got: None if got == expected[1]
                     else f"returned {got!r}, expected {expected[1]!r}",
                     what=f"rebac_delete user:{user} {relation} {path}")

    def _alias_files(self, resolving: bool) -> list[str]:
        out = []
        for target in self.tenants:
            for source in self.tenants:
                if source == target:
                    continue
                base = f"{root(target)}/shared/from-{source}"
                for rel in ("/a.txt", "/b.txt", "/c.txt", "/d.txt", "/shared/a.txt",
                            "/shared/docs/b.txt", "/docs/b.txt", "/uploads/c.txt",
                            f"/{source}/d.txt"):
                    path = base + rel
                    resolved = self.model.resolve(path)
                    if not resolving or (resolved != path and resolved not in self.model.dirs):
                        out.append(path)
        return out

    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        aliases = self._alias_files(resolving=True)
        if aliases and data.draw(st.integers(0, 3), label="via alias (2)") == 2:
            path = data.draw(st.sampled_from(aliases), label="alias path")
        else:
            path = root(self._draw_tenant(data)) + data.draw(st.sampled_from(FILES),
                                                             label="file")
        resolved = self.model.resolve(path)
        actor = self._draw_actor(data, able=lambda a: self.model.can(a, "can_write", resolved))
        payload = self._payload(actor)
        self._begin(resolved, path if path != resolved else "")
        expected = self.model.write(actor, path, payload)
        self._expect(actor, expected, lambda c: c.write(path, payload),
                     check=lambda info: None if info["path"] == expected[1] and
                     info["size"] == len(payload) else f"wrote {info!r}",
                     what=f"write {path}")

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 5), label="alias path (3)") == 3:
            path = data.draw(st.sampled_from(self._alias_files(resolving=False)),
                             label="alias path")
        else:
            path = root(self._draw_tenant(data)) + data.draw(st.sampled_from(FILES),
                                                             label="file")
        actor = self._draw_actor(data, able=lambda a: self.model.can(a, "can_write", path))
        self._begin(path)
        self._expect(actor, self.model.delete(actor, path), lambda c: c.delete(path),
                     what=f"delete {path}")

    @rule(data=st.data())
    def create_share(self, data: st.DataObject) -> None:
        source = self._draw_tenant(data, "source tenant")
        path = root(source) + data.draw(st.sampled_from(SHARE_TARGETS), label="shared path")
        if data.draw(st.integers(0, 7), label="with itself (5)") == 5:
            target = source
        else:
            target = data.draw(st.sampled_from([t for t in self.tenants if t != source]),
                               label="target tenant")
        actor = self._draw_actor(data, able=lambda a: self.model.can(a, "owner", path))
        permission = data.draw(st.sampled_from(("can_read", "can_write")), label="permission")
        alias = f"{root(target)}/shared/from-{source}"
        self._begin(path, alias)
        expected, record = self.model.create_share(actor, path, target, permission)

        def check(got: dict[str, Any]) -> str | None:
            assert record is not None
            if expected[1] is not None and got["share_id"] != expected[1]:
                return f"sharing again gave {got['share_id']}, not the renewed {expected[1]}"
            if (got["source_tenant"], got["target_tenant"], got["path"], got["permission"],
                    got["status"]) != (source, target, path, permission, "active"):
                return f"unexpected share {got!r}"
            record.share_id = got["share_id"]
            return None

        self._expect(actor, expected, lambda c: c.create_share(path, target, permission),
                     check=check, what=f"create_share {path} -> {target} ({permission})")

    @rule(data=st.data())
    def revoke_share(self, data: st.DataObject) -> None:
        known = [s for s in self.model.shares if s.share_id]
        if not known:
            self._begin()
            return
        share: Share = data.draw(st.sampled_from(known), label="share")
        actor = self._draw_actor(data, able=lambda a: a.tenant in (None, share.source)
                                 and self.model.can(a, "owner", share.path))
        self._begin(share.path, f"{root(share.target)}/shared/from-{share.source}")
        self._expect(actor, self.model.revoke_share(actor, share),
                     lambda c: c.revoke_share(share.share_id),
                     check=lambda got: None if got["status"] == "revoked" else f"got {got!r}",
                     what=f"revoke_share {share.share_id} ({share.path} -> {share.target})")

    @rule(data=st.data())
    def suspend_or_reactivate(self, data: st.DataObject) -> None:
        actor = self._draw_admin_mostly(data)
        tenant = self._draw_tenant(data)
        suspend = data.draw(st.booleans(), label="suspend")
        self._begin(root(tenant), f"{root(tenant)}/shared/a.txt",
                    *(s.path for s in self.model.shares if s.source == tenant and not s.revoked))
        refused = self.model.admin_only(actor)
        call = (lambda c: c.suspend_tenant(tenant, "fuzz")) if suspend \
            else (lambda c: c.reactivate_tenant(tenant))
        status = "suspended" if suspend else "active"
        self._expect(actor, refused or ok(),
                     call, check=lambda got: None if got["status"] == status else f"got {got!r}",
                     what=f"{'suspend' if suspend else 'reactivate'}_tenant {tenant}")
        if refused is None:
            self.model.set_status(tenant, status)

    # -- the invariant -------------------------------------------------------------------

    @invariant()
    def access_matches_model(self) -> None:
        """A bounded, rotating sample: every principal on the paths the last step touched
        first, then the tenants' own paths and the alias paths in turn."""
        if not self.tenants:
            return
        budget = self.checks_per_step
        actors = self.actors
        after = self._answers()
        changed = [key for key, outcome in after.items() if self._before.get(key) != outcome]
        unchanged = [key for key in after if key not in set(changed)]
        n_focus = min(len(after), (budget + 1) // 2)
        chosen = changed[:n_focus]
        if len(chosen) < n_focus and unchanged:
            start = self._cursor["focus"]
            self._cursor["focus"] += n_focus - len(chosen)
            chosen += [unchanged[(start + k) % len(unchanged)]
                       for k in range(min(n_focus - len(chosen), len(unchanged)))]
        for actor, path, op in chosen:
            self._check(actor, op, path)
        rest = budget - len(chosen)
        picks: list[tuple[Actor, str, int]] = []
        for kind, share in (("direct", rest - rest // 3), ("alias", rest // 3)):
            paths = self.model.direct_paths() if kind == "direct" else self.model.alias_paths()
            pairs = [(a, p) for p in paths for a in actors]
            for _ in range(share):
                i = self._cursor[kind]
                self._cursor[kind] += 1
                picks.append((*pairs[i % len(pairs)], i // len(pairs)))
        for actor, path, turn in picks:
            ops = ("list", "stat", "exists") if self.model.looks_like_dir(path) \
                else ("read", "stat", "exists")
            self._check(actor, ops[turn % 3], path)

    def _check(self, actor: Actor, op: str, path: str) -> None:
        STEPS.checks += 1
        expected = getattr(self.model, f"expect_{op}")(actor, path)
        calls: dict[str, Callable[[NexusClient], Any]] = {
            "read": lambda c: c.read(path),
            "stat": lambda c: (lambda i: (i["path"], i["type"], i["size"]))(c.stat(path)),
            "exists": lambda c: c.exists(path),
            "list": lambda c: sorted(e["path"] for e in c.list(path)),
        }
        self._expect(actor, expected, calls[op],
                     check=lambda got: None if got == expected[1]
                     else f"returned {got!r}, the model says {expected[1]!r}",
                     what=f"invariant: {op} {path}")


def run_fuzz(*, backend: str, base_dir: Path, pg_url: str | None, steps: int,
             step_count: int, label: str, first_seed: int = 0) -> int:
    """Run examples until ``steps`` rules have executed; returns the count."""
    machine: type[NexusMachine] = type(f"NexusFuzz_{backend}", (NexusMachine,), {
        "backend": backend, "pg_url": pg_url, "base_dir": base_dir, "label": label,
        "checks_per_step": _env_int("NEXUS_FUZZ_CHECKS", 6)})
    start = STEPS.by_test.get(label, 0)
    for round_ in itertools.count():
        done = STEPS.by_test.get(label, 0) - start
        if done >= steps:
            return done
        examples = max(1, math.ceil((steps - done) / step_count))
        seeded = seed(first_seed + round_)(type(machine.__name__, (machine,), {}))
        run_state_machine_as_test(seeded, settings=hsettings(
            max_examples=examples, stateful_step_count=min(step_count, steps - done),
            deadline=None, database=None, print_blob=True, report_multiple_bugs=False,
            # no "explain" phase: its line tracer makes a found failure take minutes
            # (Python 3.11) and the run would end in a timeout instead of the failure
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                   HealthCheck.data_too_large]))
    raise AssertionError("unreachable")


@pytest.fixture
def fuzz_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the examples' deployments live: tmpfs when there is one (SQLite and the blob
    store fsync every write), else pytest's tmp directory."""
    with scratch_directory(tmp_path, "nexus-fuzz-") as directory:
        yield directory


def _run(backend: str, fuzz_dir: Path, request: pytest.FixtureRequest, steps: int,
         step_count: int, label: str) -> None:
    pg_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    started = time.perf_counter()
    try:
        done = run_fuzz(backend=backend, base_dir=fuzz_dir, pg_url=pg_url, steps=steps,
                        step_count=step_count, label=label)
    finally:
        if pg_url is not None:
            truncate_all(pg_url)
    print(f"\n{label}: {done} steps in {time.perf_counter() - started:.1f} s")
    assert done >= steps


def test_stateful_fuzz(backend: str, fuzz_dir: Path, request: pytest.FixtureRequest) -> None:
    """The CI-size run on each backend."""
    steps = _env_int("NEXUS_FUZZ_STEPS", CI_STEPS)
    _run(backend, fuzz_dir, request, steps, CI_STEP_COUNT, f"stateful fuzz [{backend}]")


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_stateful_fuzz_full(backend: str, fuzz_dir: Path,
                            request: pytest.FixtureRequest) -> None:
    """The full-size run: ``NEXUS_FUZZ_STEPS`` (default 100,000) in total, half on each
    backend."""
    steps = math.ceil(_env_int("NEXUS_FUZZ_STEPS", SLOW_STEPS) / 2)
    _run(backend, fuzz_dir, request, steps, SLOW_STEP_COUNT,
         f"stateful fuzz, full [{backend}]")
