"""Benchmark of the ReBAC permission engine on SQLite and PostgreSQL.

Run from the repository root::

    .venv/bin/python bench/rebac.py                        # both backends, full size
    .venv/bin/python bench/rebac.py --backend sqlite --quick
    .venv/bin/python bench/rebac.py --profile-misses       # cProfile every MISS

Each backend gets a throw-away deployment: a temporary data directory and, for
PostgreSQL, a database ``bench_rebac_<random>`` created on ``--database-url`` and dropped
at the end. One tenant (``bench``, created on the enterprise plan so that its request rate limit
stays out of the way) holds ``--tuples`` relation tuples (default 100,000,
written in one transaction with ``TupleRepository``): grants of every level to 5,000
other users and to group usersets on 1,000 other directories, plus group memberships.
Only the grants named below concern the measured principals.

Operations (one line each):

``check``         ``service.permissions.check_paths(principal, "can_read", [path])`` for a
                  non-admin principal whose only grant is ``can_read`` on the tenant root,
                  for a file ``depth`` levels below it (``/tenants/bench/d1/…/f``). The
                  grant is the last one the checker's union order reaches, so every level
                  of the tree is evaluated for all five relations — the worst case.
                  ``uncached``: a ``PermissionEngine`` with ``CheckCache(max_entries=0)``
                  (verified: no hits); ``cached``: the deployment's engine, same check.
``list_objects``  ``service.rebac.rebac_list_objects(principal, user, "can_read", "file")``
                  for a user who owns a directory of 10,000 files (created through the
                  repositories in one transaction; not timed), paged 1,000 at a time
                  (``limit``/``after``, the listing cap): one sample is all the pages.
``list``          a non-admin ``NexusClient`` over ``LocalTransport`` calling
                  ``list(dir)`` on a directory of 1,000 files it may read through
                  ``viewer`` on a grandparent directory. ``cold``: an (untimed) grant
                  elsewhere in the tenant before each call advances the tenant's
                  revision, so no cached answer applies; ``warm``: the answers of the
                  previous call are cached.

Budgets (issue 14, "Budgets, not hopes"):

``budget``        ``rebac_check`` of a user in no group on ``group:c<n>_g0#member`` where
                  ``n`` groups each contain every other (``group#member`` tuples, the
                  default model): naively n! paths; the step budget must cut the denial
                  off (``authz_limit_exceeded``) well under a second at n = 6, 10 and 12.
                  ``validate``: ``parse_model`` of a 1,200-relation model with fan-out,
                  cycles through usersets and exclusions, and of 600 chained relations
                  (both once cubic and recursive). ``batch``: one ``rebac_check_batch`` of
                  1,000 checks by the owner, on 1,000 different files.

The ``floor`` line is the machine's speed: one million iterations of a pure-Python loop
(a dict lookup and an add), so figures from different machines can be compared.

Targets (set for SQLite; PostgreSQL is judged against the same figures): uncached check
at depth 10 <= 0.3 ms p50, cached <= 10 us p50, list of 1,000 filtered entries <= 20 ms
p50. ``--quick`` runs 10x fewer iterations over
10x fewer tuples and list-objects files (the listing stays at 1,000 entries).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import postgres_database
from nexus.authz import RelationTuple, parse_model
from nexus.client import LocalTransport, NexusClient
from nexus.errors import AuthzLimitExceededError
from nexus.service import NexusService, bootstrap
from nexus.service.permissions import CheckCache, PermissionEngine, RevisionTracker
from nexus.service.tenant_state import TenantStates
from nexus.settings import Settings
from nexus.store import FileRepository
from nexus.store.tuples import TupleRepository
from nexus.types import Principal

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TENANT = "bench"
ROOT = f"/tenants/{TENANT}"
DEPTHS = (1, 5, 10, 20)
OTHER_USERS = 5_000
OTHER_DIRS = 1_000
GROUPS = 200
LEVELS = ("owner", "editor", "can_write", "viewer", "can_read")
LIST_ENTRIES = 1_000
CHECKER = "reader"  # can_read on the tenant root
OWNER = "owner1"  # owns ROOT/owned (list-objects)
LISTER = "lister"  # viewer on ROOT/shared (listing)
LIST_DIR = f"{ROOT}/shared/team/docs"
CLIQUES = (6, 10, 12)  # groups in each all-to-all membership clique (budget)
BATCH = 1_000
EMPTY_DIGEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal on the p50 of one line (the goals are set for SQLite)."""

    text: str
    p50_max: float  # seconds


@dataclass
class Result:
    backend: str
    op: str
    variant: str
    samples: list[float]  # seconds, one per iteration
    note: str = ""
    target: Target | None = None

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def ops_per_s(self) -> float:
        total = sum(self.samples)
        return len(self.samples) / total if total > 0 else float("inf")

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.p50 <= self.target.p50_max else "MISS"


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (with 3 samples, p99 is the slowest one)."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.2f} s"


TARGETS = {
    ("check", "uncached d=10"): Target("p50 <= 0.3 ms", 0.3e-3),
    ("check", "cached d=10"): Target("p50 <= 10 us", 10e-6),
    ("list", "cold"): Target("p50 <= 20 ms", 20e-3),
    ("list", "warm"): Target("p50 <= 20 ms", 20e-3),
    **{("budget", f"clique n={n}"): Target("p50 <= 0.5 s", 0.5) for n in CLIQUES},
    ("budget", "validate 1,200"): Target("p50 <= 0.5 s", 0.5),
    ("budget", "validate chain"): Target("p50 <= 0.5 s", 0.5),
}


#: Set by :func:`profile`: the timed loop (only) then runs under this profiler.
_PROFILER: cProfile.Profile | None = None


def timed(fn: Callable[[], Any], n: int, *,
          before: Callable[[], Any] | None = None) -> list[float]:
    """Call ``fn()`` ``n`` times; each call's duration in seconds. ``before()`` runs
    ahead of every call, untimed (and unprofiled)."""
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        if before is not None:
            before()
        if _PROFILER is not None:
            _PROFILER.enable()
        start = clock()
        fn()
        samples.append(clock() - start)
        if _PROFILER is not None:
            _PROFILER.disable()
    return samples


# -- deployment and data ---------------------------------------------------------------


@contextmanager
def deployment(backend: str, admin_url: str) -> Iterator[NexusService]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"nexus-bench-rebac-{backend}-"))
    try:
        if backend == "sqlite":
            service = bootstrap(Settings(data_dir=data_dir))
            try:
                yield service
            finally:
                service.close()
        else:
            with postgres_database(admin_url, "bench_rebac_") as url:
                service = bootstrap(Settings(data_dir=data_dir, database_url=url))
                try:
                    yield service
                finally:
                    service.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def noise_tuples(n: int, rng: random.Random) -> Iterator[RelationTuple]:
    """``n`` distinct tuples that concern none of the measured principals."""
    for i in range(n):
        kind = i % 20
        if kind == 0:  # group membership
            yield RelationTuple("group", f"g{i % GROUPS}", "member", "user",
                                f"u{i:06d}")
            continue
        directory = f"{ROOT}/other/p{i % OTHER_DIRS:04d}"
        obj = directory if kind == 1 else f"{directory}/f{i:06d}"
        relation = LEVELS[rng.randrange(len(LEVELS))]
        if kind == 2:  # a group's members
            yield RelationTuple("file", obj, relation, "group", f"g{i % GROUPS}", "member")
        else:
            yield RelationTuple("file", obj, relation, "user", f"u{i % OTHER_USERS:05d}")


def seed(service: NexusService, n_tuples: int, list_objects_files: int,
         rng: random.Random, *, analyze: bool = True) -> dict[str, float]:
    """Write the tenant's data; returns the setup durations (seconds) by step.

    On PostgreSQL the tables are then ANALYZEd, as autovacuum would do within about a
    minute of such a load: with the statistics of the empty tables the planner reads
    ``rebac_tuples`` through the subject index and a prefetch scans the whole tenant
    (``--no-analyze`` measures that state).
    """
    admin = Principal.local_admin()
    # Enterprise: its request rate limit (500/s) stays above what the listing loops send.
    service.tenants.create_tenant(admin, TENANT, plan="enterprise")
    took: dict[str, float] = {}
    start = time.perf_counter()
    now = time.time()
    with service.db.write() as conn:
        repo = TupleRepository(conn)
        for t in noise_tuples(n_tuples, rng):
            repo.write(TENANT, t, now=now, created_by=None)
        for n in CLIQUES:
            for i in range(n):
                for j in range(n):
                    if i != j:
                        repo.write(TENANT, RelationTuple.parse(
                            f"group:c{n}_g{i}", "member", f"group:c{n}_g{j}#member"),
                            now=now, created_by=None)
        repo.bump_revision(TENANT)
    took["tuples"] = time.perf_counter() - start

    start = time.perf_counter()
    with service.db.write() as conn:
        files = FileRepository(conn)
        directories = [ROOT, f"{ROOT}/owned", f"{ROOT}/shared", f"{ROOT}/shared/team", LIST_DIR]
        for path in directories:
            files.insert_directory(TENANT, path, path.rpartition("/")[0] or "/", now)
        for directory, count in ((f"{ROOT}/owned", list_objects_files),
                                 (LIST_DIR, LIST_ENTRIES)):
            for i in range(count):
                files.insert_file(TENANT, f"{directory}/f{i:05d}.txt", directory, size=0,
                                  digest=EMPTY_DIGEST, now=now)
    took["files"] = time.perf_counter() - start

    # The grants that matter go through the service, as a real administrator's would.
    rebac = service.rebac
    rebac.rebac_create(admin, ("user", CHECKER), "can_read", ("file", ROOT))
    rebac.rebac_create(admin, ("user", OWNER), "owner", ("file", f"{ROOT}/owned"))
    rebac.rebac_create(admin, ("user", LISTER), "viewer", ("file", f"{ROOT}/shared"))
    if analyze and service.db.dialect == "postgresql":
        start = time.perf_counter()
        with service.db.write() as conn:  # maintenance, not a query of the product
            conn.exec_driver_sql("ANALYZE rebac_tuples")
            conn.exec_driver_sql("ANALYZE files")
        took["analyze"] = time.perf_counter() - start
    return took


def check_path(depth: int) -> str:
    """A file ``depth`` levels below the tenant root."""
    return ROOT + "".join(f"/d{k}" for k in range(1, depth)) + "/f.txt"


def uncached_engine(service: NexusService) -> tuple[PermissionEngine, CheckCache]:
    """A permission engine like the deployment's, whose cache keeps nothing."""
    cache = CheckCache(max_entries=0)
    engine = PermissionEngine(db=service.db, revisions=RevisionTracker(service.db), cache=cache,
                              states=TenantStates(service.db))
    return engine, cache



# -- the operations --------------------------------------------------------------------


@dataclass
class Plan:
    scale: int
    tuples: int
    list_objects_files: int
    check_uncached_n: int = 2_000
    check_cached_n: int = 20_000
    list_objects_n: int = 3
    list_n: int = 100

    def n(self, count: int) -> int:
        return max(3, count // self.scale)


@dataclass
class Bench:
    """The operations of one backend, each runnable again (for the profiler)."""

    service: NexusService
    plan: Plan

    def check(self, depth: int, cached: bool, n: int) -> Result:
        principal = Principal(user_id=CHECKER, tenant_id=TENANT)
        path = check_path(depth)
        if cached:
            engine, cache = self.service.permissions, None
        else:
            engine, cache = uncached_engine(self.service)
        stranger = Principal(user_id="u00001", tenant_id=TENANT)
        if engine.check_paths(stranger, "can_read", [path]) != [False]:
            raise AssertionError("a user without a grant may read: the data is wrong")
        for _ in range(20):  # warm-up: pooled connections, statement cache, check cache
            if engine.check_paths(principal, "can_read", [path]) != [True]:
                raise AssertionError(f"check of {path} denied")
        samples = timed(lambda: engine.check_paths(principal, "can_read", [path]), n)
        if cache is not None and cache.hits:
            raise AssertionError("CheckCache(max_entries=0) answered from cache")
        variant = f"{'cached' if cached else 'uncached'} d={depth}"
        return Result("", "check", variant, samples,
                      note=f"{path.count('/') + 1} path segments")

    def list_objects(self, n: int) -> Result:
        principal = Principal(user_id=OWNER, tenant_id=TENANT)
        expected = self.plan.list_objects_files + 1  # the directory and its files

        def once() -> None:
            found: list[str] = []
            after = None
            while page := self.service.rebac.rebac_list_objects(
                    principal, ("user", OWNER), "can_read", "file", limit=1_000, after=after):
                found += page
                after = page[-1]
                if len(page) < 1_000:
                    break
            if len(found) != expected:
                raise AssertionError(f"list_objects found {len(found)}, expected {expected}")

        # No warm-up: a call over 10,000 files takes seconds, and nothing in it is cached.
        return Result("", "list_objects", f"{self.plan.list_objects_files} files",
                      timed(once, n), note="owner of one directory, can_read, type file")

    def listing(self, cold: bool, n: int) -> Result:
        service = self.service
        client = NexusClient(LocalTransport(service, Principal(user_id=LISTER,
                                                               tenant_id=TENANT),
                                            owns_service=False))
        admin = Principal.local_admin()
        revisions: set[str] = set()

        def invalidate() -> None:
            # Re-granting an existing tuple advances the tenant's revision, which is part
            # of every cache key: the next listing finds no cached answer.
            service.rebac.rebac_create(admin, ("user", "bump"), "viewer",
                                       ("file", f"{ROOT}/elsewhere"))
            revisions.add(service.rebac.rebac_revision(admin, tenant_id=TENANT))

        def once() -> None:
            if len(client.list(LIST_DIR)) != LIST_ENTRIES:
                raise AssertionError("list returned the wrong number of entries")

        for _ in range(3):
            once()
        samples = timed(once, n, before=invalidate if cold else None)
        if cold and len(revisions) != n:
            raise AssertionError("the tenant's revision did not advance before every listing")
        return Result("", "list", "cold" if cold else "warm", samples,
                      note=f"{LIST_ENTRIES} entries, inherited viewer"
                           + (", revision bumped before each" if cold else ""))

    def clique(self, n: int, k: int) -> Result:
        admin = Principal.local_admin()
        outcomes: set[str] = set()

        def once() -> None:
            try:
                granted = self.service.rebac.rebac_check(
                    admin, ("user", "nobody"), "member", ("group", f"c{n}_g0"),
                    tenant_id=TENANT)
            except AuthzLimitExceededError:
                outcomes.add("cut off: authz_limit_exceeded")
                return
            if granted:
                raise AssertionError("a user in no group was granted membership")
            outcomes.add("denied within the budget")

        samples = timed(once, k)
        return Result("", "budget", f"clique n={n}", samples,
                      note=f"{n * (n - 1)} group#member tuples, {', '.join(sorted(outcomes))}")

    def validate(self, chain: bool, k: int) -> Result:
        head = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n"
        if chain:
            rels = [f"r{i}: r{i + 1}" for i in range(599)] + ["r599: [user]"]
        else:
            rels = ["r0: [user]", "r1: [user] or r0"] + [
                f"r{i}: ([doc#r{i - 1}] or r{i - 1} or r{i - 2}) but not r{i - 2}"
                for i in range(2, 1_200)]
        text = head + "".join(f"    define {r}\n" for r in rels)
        return Result("", "budget", "validate chain" if chain else "validate 1,200",
                      timed(lambda: parse_model(text), k),
                      note=f"{len(rels)} relations, {len(text):,} bytes")

    def batch(self, k: int) -> Result:
        principal = Principal(user_id=OWNER, tenant_id=TENANT)
        items = [(("user", OWNER), "can_read", ("file", f"{ROOT}/owned/f{i:05d}.txt"))
                 for i in range(min(BATCH, self.plan.list_objects_files))]

        def once() -> None:
            if self.service.rebac.rebac_check_batch(principal, items) != [True] * len(items):
                raise AssertionError("the owner was denied in the batch")

        return Result("", "budget", f"batch {len(items)}", timed(once, k),
                      note="rebac_check_batch, one connection, distinct files")

    def runs(self) -> list[tuple[Callable[[int], Result], int]]:
        p = self.plan
        out: list[tuple[Callable[[int], Result], int]] = []
        for cached in (False, True):
            count = p.n(p.check_cached_n if cached else p.check_uncached_n)
            for depth in DEPTHS:
                out.append((lambda k, d=depth, c=cached: self.check(d, c, k), count))
        out.append((self.list_objects, p.list_objects_n))
        out.append((lambda k: self.listing(True, k), p.n(p.list_n)))
        out.append((lambda k: self.listing(False, k), p.n(p.list_n)))
        for n in CLIQUES:
            out.append((lambda k, n=n: self.clique(n, k), 5))
        out.append((lambda k: self.validate(False, k), 5))
        out.append((lambda k: self.validate(True, k), 5))
        out.append((self.batch, 3))
        return out


def profile(run: Callable[[int], Result], n: int) -> tuple[Result, str]:
    """Re-run one operation with its timed loop under cProfile; top 20 by cumulative time
    (the benchmark's own frames hidden)."""
    global _PROFILER
    _PROFILER = cProfile.Profile()
    try:
        result = run(n)
    finally:
        profiler, _PROFILER = _PROFILER, None
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    own_frames = r"^(?!rebac\.py:\d+\((once|<lambda>|timed|check|listing|list_objects)\))"
    stats.sort_stats("cumulative").print_stats(own_frames, 20)
    return result, out.getvalue().strip()


def run_backend(backend: str, plan: Plan, args: argparse.Namespace,
                rng: random.Random) -> tuple[list[Result], list[str], list[str]]:
    print(f"[{backend}] building the deployment ...", file=sys.stderr, flush=True)
    with deployment(backend, args.database_url) as service:
        took = seed(service, plan.tuples, plan.list_objects_files, rng,
                    analyze=not args.no_analyze)
        setup = [f"{backend}: setup {plan.tuples:,} tuples in {took['tuples']:.1f} s "
                 f"(TupleRepository.write, one transaction), "
                 f"{plan.list_objects_files + LIST_ENTRIES:,} file rows in "
                 f"{took['files']:.1f} s"
                 + (f", ANALYZE in {took['analyze']:.1f} s" if "analyze" in took else
                    ", tables not analyzed" if backend == "postgresql" else "")]
        bench = Bench(service, plan)
        results: list[Result] = []
        profiles: list[str] = []
        for run, n in bench.runs():
            result = run(n)
            result.backend = backend
            result.target = TARGETS.get((result.op, result.variant))
            results.append(result)
            print(f"  {format_row(result)}", file=sys.stderr, flush=True)
            if args.profile_misses and result.verdict == "MISS":
                profiled, text = profile(run, max(3, min(n, 200)))
                profiles.append(f"=== profile: {backend} {result.op} {result.variant} "
                                f"({len(profiled.samples)} iterations under cProfile) ===\n"
                                + text)
    return results, profiles, setup


# -- report ----------------------------------------------------------------------------

_HEADER = (f"{'backend':<10} {'op':<12} {'variant':<14} {'iters':>6} {'p50':>11} {'p99':>11} "
           f"{'ops/s':>10}  {'target':<14} {'':<4}  note")


def format_row(r: Result) -> str:
    target = r.target.text if r.target else "-"
    return (f"{r.backend:<10} {r.op:<12} {r.variant:<14} {len(r.samples):>6} "
            f"{fmt_time(r.p50):>11} {fmt_time(r.p99):>11} {r.ops_per_s:>10.1f}  "
            f"{target:<14} {r.verdict:<4}  {r.note}")


def machine_lines() -> list[str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), "?")
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    start = time.perf_counter()
    table, total = {i: i for i in range(1_000)}, 0
    for i in range(1_000_000):
        total += table[i % 1_000]
    floor = time.perf_counter() - start
    return [f"machine:   {os.cpu_count()} CPUs ({cpu}), {platform.platform()}",
            f"floor:     {floor * 1e3:.0f} ms per million pure-Python loop iterations "
            "(dict lookup + add)",
            f"python:    {platform.python_version()}; SQLite {sqlite3.sqlite_version}",
            f"load avg:  {load} (at start)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true",
                        help="10x fewer iterations, tuples and list-objects files")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL,
                        help="PostgreSQL server (maintenance database) on which a throw-away "
                             f"database is created and dropped (default {DEFAULT_ADMIN_URL})")
    parser.add_argument("--tuples", type=int, default=None,
                        help="tuples in the tenant (default 100,000; 10,000 with --quick)")
    parser.add_argument("--profile-misses", action="store_true",
                        help="re-run every operation that misses its target under cProfile "
                             "and print the top 20 functions by cumulative time")
    parser.add_argument("--no-analyze", action="store_true",
                        help="PostgreSQL: measure right after the load, before the planner "
                             "has statistics (the state until autovacuum's ANALYZE)")
    args = parser.parse_args(argv)

    scale = 10 if args.quick else 1
    plan = Plan(scale=scale, tuples=args.tuples or 100_000 // scale,
                list_objects_files=10_000 // scale)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    header = machine_lines()
    results: list[Result] = []
    profiles: list[str] = []
    setups: list[str] = []
    for backend in backends:
        r, p, s = run_backend(backend, plan, args, random.Random(1234))
        results += r
        profiles += p
        setups += s

    print()
    print("nexus ReBAC benchmark" + (" (--quick: 10x smaller)" if args.quick else ""))
    for line in header + setups:
        print(line)
    print()
    print(_HEADER)
    for r in results:
        print(format_row(r))
    judged = [r for r in results if r.verdict]
    misses = [r for r in judged if r.verdict == "MISS"]
    print()
    print(f"targets: {len(judged) - len(misses)} PASS, {len(misses)} MISS"
          + (f" ({', '.join(f'{r.backend} {r.op} {r.variant}' for r in misses)})"
             if misses else ""))
    for text in profiles:
        print()
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
