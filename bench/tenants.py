"""Benchmark of tenant records at fleet scale: onboarding 10,000 tenants over HTTP with
8 parallel clients, then tenant listing, fleet metrics and usage with 10,000 and with
100,000 tenants in the store.

Run from the repository root::

    .venv/bin/python bench/tenants.py                       # both backends, full size
    .venv/bin/python bench/tenants.py --backend sqlite --quick
    .venv/bin/python bench/tenants.py --tenants 2000 --grow-to 20000

For each backend the script starts ``python -m nexus.cli serve`` over a temporary data
directory (and, for PostgreSQL, a throw-away database ``bench_server_<random>`` on
``--database-url``), like ``bench/server.py --start``, and removes everything at the end.

1. **Onboarding** (timed, over HTTP): ``--clients`` threads (8), each with its own
   ``nexus.connect(config={"url", "api_key": <admin key>})``, share the tenant list like
   the guide's ``bulk_create_tenants``. Each tenant is ``create_tenant(tenant_id, name,
   plan)`` (the server creates ``/tenants/<id>`` and its four folders), then
   ``_call_rpc("admin_create_key", {... "tenant_id": id})`` for its administrator, then
   the owner grant ``rebac_create(("user", "owner"), "owner", ("file", "/tenants/<id>"))``.
   Plans: every 20th tenant ``enterprise``, every 4th ``pro``, the rest ``free``.
2. **Latencies** with ``--tenants`` (10,000) tenants: ``list_tenants(limit=100)`` from a
   random cursor, ``list_tenants(plan="pro", limit=100)``, ``tenant_health_metrics()`` and
   ``get_usage(<random tenant>)``, sequentially, as the system administrator.
3. **Growth** to ``--grow-to`` (100,000) tenants with the server stopped, in-process on
   the same data directory / database: the first 1,000 through
   ``service.tenants.create_tenant(Principal.local_admin(), ...)`` one by one (to show
   its rate), the rest as batched multi-row INSERTs of the same rows (``tenants``,
   ``tenant_usage`` and the five directory rows of ``files``) in transactions of 5,000
   tenants. These tenants have no users, keys or grants. On PostgreSQL the three tables
   are then ``ANALYZE``d, as autovacuum would within a minute.
4. **Latencies** again after restarting the server.

Targets (SQLite; PostgreSQL is shown against the same figures): 10,000 tenants onboarded in
<= 60 s (scaled to --tenants: >= 166.7 tenants/s), ``tenant_health_metrics`` p50 <= 100 ms
with 100,000 tenants. ``--quick``: 1,000 tenants grown to 10,000, 50 iterations.
``--profile-misses`` re-runs a missed latency loop, or 1,000 more onboardings (ids from
``t900000``, after every measurement so the measured stores hold exactly ``--tenants`` and
``--grow-to`` tenants), with ``py-spy record`` attached to the server.
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nexus
from _common import (
    ServerProcess,
    add_backend_option,
    add_database_url_option,
    cpu_seconds,
    script_parser,
    throwaway_store,
    timed,
    uptime,
)
from server import Result, Target, machine_lines, print_report, profile_op

STANDARD_DIRECTORIES = ("users", "shared", "uploads", "exports")
OWNER = "owner"
BATCH = 5_000  # tenants per transaction when growing the store
SERVICE_CREATED = 1_000  # of the grown tenants, created through the service one by one
PROFILE_FIRST = 900_000  # tenant ids of a profiling re-run of the onboarding


def tenant_id(i: int) -> str:
    return f"t{i:06d}"


def plan_of(i: int) -> str:
    return "enterprise" if i % 20 == 0 else "pro" if i % 4 == 1 else "free"


# -- results ---------------------------------------------------------------------------


@dataclass
class Row:
    """A result and the number of tenants in the store when it was measured."""

    result: Result
    stage: int


def onboard_target(n: int) -> Target:
    limit = 60.0 * n / 10_000
    text = "<= 60 s total" if n == 10_000 else f"<= {limit:g} s total"

    def measure(r: Result) -> tuple[str, bool] | None:
        if r.wall is None:
            return None
        return f"{r.wall:.1f} s", r.wall <= limit
    return Target(text, measure)


HEALTH_TARGET_MS = 100.0


def health_target(grown: bool, tenants: int) -> Target | None:
    if not grown:
        return None
    text = f"p50 <= {HEALTH_TARGET_MS:g} ms" + ("" if tenants == 100_000
                                                 else f" ({tenants // 1000}k)")
    return Target(text, lambda r: (f"{r.p50_ms:.3f} ms", r.p50_ms <= HEALTH_TARGET_MS))


# -- onboarding over HTTP --------------------------------------------------------------


def onboard(url: str, admin_key: str, n: int, clients: int, first: int = 0,
            server_pid: int | None = None) -> Result:
    """Tenants ``first`` … ``first + n - 1`` by ``clients`` threads, each with its own
    client (the admin key)."""
    connections = [nexus.connect(config={"url": url, "api_key": admin_key, "timeout": 120})
                   for _ in range(clients)]
    for client in connections:  # warm-up: open each client's connection
        client.list("/", limit=1)
    indexes = iter(range(first, first + n))
    lock = threading.Lock()
    steps: list[list[float]] = []
    errors: collections.Counter[str] = collections.Counter()
    clock = time.perf_counter

    def worker(client: nexus.NexusClient) -> None:
        mine, failed = [], collections.Counter[str]()
        while True:
            with lock:
                i = next(indexes, None)
            if i is None:
                break
            tid = tenant_id(i)
            try:
                t0 = clock()
                client.create_tenant(tid, name=f"Tenant {i}", plan=plan_of(i))
                t1 = clock()
                client._call_rpc("admin_create_key", {
                    "user_id": OWNER, "name": f"{OWNER} (Tenant Admin)",
                    "subject_type": "user", "tenant_id": tid, "is_admin": False})
                t2 = clock()
                client.rebac_create(subject=("user", OWNER), relation="owner",
                                    object=("file", f"/tenants/{tid}"), tenant_id=tid)
                t3 = clock()
            except nexus.NexusError as exc:
                failed[type(exc).__name__] += 1
                continue
            mine.append([t1 - t0, t2 - t1, t3 - t2])
        with lock:
            steps.extend(mine)
            errors.update(failed)

    threads = [threading.Thread(target=worker, args=(c,)) for c in connections]
    cpu0 = cpu_seconds(server_pid)
    start = clock()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = clock() - start
    cpu1 = cpu_seconds(server_pid)
    for client in connections:
        client.close()
    medians = "/".join(f"{statistics.median(s[k] for s in steps) * 1000:.2f}"
                       for k in range(3)) if steps else "-"
    note = (f"{len(steps)} tenants in {wall:.1f} s = {len(steps) / wall:.0f} tenants/s, "
            f"{clients} clients; per tenant create_tenant+admin_create_key+rebac_create, "
            f"p50 ms each: {medians}")
    if cpu0 is not None and cpu1 is not None:
        note += f"; server CPU {(cpu1 - cpu0) / wall * 100:.0f}% (of one core)"
    if errors:
        note += "; ERRORS " + " ".join(f"{k}={v}" for k, v in errors.items())
    return Result("", "onboard", [sum(s) for s in steps], wall=wall, note=note)


# -- latencies -------------------------------------------------------------------------


def latencies(url: str, admin_key: str, tenants: int, rng: random.Random
              ) -> tuple[dict[str, Callable[[int], Result]], nexus.NexusClient]:
    """The timed loops, as functions of an iteration count, over a store of exactly the
    tenants ``t000000`` … ``tenant_id(tenants - 1)``."""
    admin = nexus.connect(config={"url": url, "api_key": admin_key, "timeout": 120})

    def list_page(count: int) -> Result:
        cursors = [None] + [tenant_id(rng.randrange(tenants)) for _ in range(count - 1)]

        def one(i: int) -> None:
            page = admin.list_tenants(limit=100, cursor=cursors[i])
            if not page["tenants"] and cursors[i] is not None \
                    and cursors[i] < tenant_id(tenants - 1):
                raise AssertionError("list_tenants returned an empty page")

        return Result("", "list_tenants", timed(one, count),
                      note="limit=100 from a random cursor (the first from the start)")

    def list_pro(count: int) -> Result:
        cursors = [None] + [tenant_id(rng.randrange(tenants)) for _ in range(count - 1)]

        def one(i: int) -> None:
            admin.list_tenants(plan="pro", limit=100, cursor=cursors[i])

        return Result("", "list_pro", timed(one, count),
                      note='list_tenants(plan="pro", limit=100) from a random cursor')

    def health(count: int) -> Result:
        def one(_: int) -> None:
            metrics = admin.tenant_health_metrics()
            if metrics["total_tenants"] != tenants:
                raise AssertionError(f"total_tenants {metrics['total_tenants']} != {tenants}")

        metrics = admin.tenant_health_metrics()
        plans = ", ".join(f"{k} {v}" for k, v in sorted(metrics["by_plan"].items()))
        return Result("", "health_metrics", timed(one, count),
                      note=f"tenant_health_metrics(): {metrics['total_tenants']} tenants "
                           f"({plans}), {metrics['total_users']} users")

    def usage(count: int) -> Result:
        picks = [tenant_id(rng.randrange(tenants)) for _ in range(count)]
        return Result("", "get_usage", timed(lambda i: admin.get_usage(picks[i]), count),
                      note="get_usage(<random tenant>)")

    for _ in range(3):  # warm-up
        admin.list_tenants(limit=100)
        admin.tenant_health_metrics()
        admin.get_usage(tenant_id(0))
    ops = {"list_tenants": list_page, "list_pro": list_pro, "health_metrics": health,
           "get_usage": usage}
    return ops, admin


# -- growing the store in-process ------------------------------------------------------


def grow(data_dir: Path, database_url: str | None, start: int, end: int) -> str:
    """Tenants ``start`` … ``end - 1`` in-process, the server being stopped."""
    from sqlalchemy import insert

    from nexus import paths
    from nexus.service import bootstrap
    from nexus.settings import Settings
    from nexus.store.schema import files, tenant_usage, tenants
    from nexus.types import Principal

    service = bootstrap(Settings(data_dir=data_dir, database_url=database_url))
    admin = Principal.local_admin()
    clock = time.perf_counter
    try:
        one_by_one = min(SERVICE_CREATED, end - start)
        t0 = clock()
        for i in range(start, start + one_by_one):
            service.tenants.create_tenant(admin, tenant_id(i), name=f"Tenant {i}",
                                          plan=plan_of(i))
        t1 = clock()
        now = time.time()
        for first in range(start + one_by_one, end, BATCH):
            ids = range(first, min(end, first + BATCH))
            tenant_rows, usage_rows, file_rows = [], [], []
            for i in ids:
                tid = tenant_id(i)
                root = paths.tenant_root(tid)
                tenant_rows.append({
                    "tenant_id": tid, "created_at": now, "name": f"Tenant {i}",
                    "plan": plan_of(i), "status": "active", "status_reason": None,
                    "limit_overrides": {}, "settings": {}, "extra": {},
                    "trial_ends_at": None, "updated_at": now})
                usage_rows.append({"tenant_id": tid, "storage_bytes": 0, "files": 0,
                                   "users": 0, "api_calls": 0})
                dirs = [(root, paths.TENANTS_ROOT)] + [(f"{root}/{sub}", root)
                                                       for sub in STANDARD_DIRECTORIES]
                file_rows += [{"tenant_id": tid, "path": p, "parent": parent,
                               "kind": "directory", "size": 0, "digest": None, "version": 1,
                               "created_at": now, "modified_at": now} for p, parent in dirs]
            with service.db.write() as conn:
                conn.execute(insert(tenants), tenant_rows)
                conn.execute(insert(tenant_usage), usage_rows)
                conn.execute(insert(files), file_rows)
        t2 = clock()
        analyzed = ""
        if service.db.dialect == "postgresql":
            with service.db.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("ANALYZE tenants, tenant_usage, files")
            analyzed = f"; ANALYZE {clock() - t2:.1f} s"
    finally:
        service.close()
    batched = end - start - one_by_one
    rate_one = one_by_one / (t1 - t0) if t1 > t0 else float("inf")
    rate_batch = batched / (t2 - t1) if t2 > t1 and batched else float("inf")
    return (f"{end - start:,} tenants in-process (server stopped) in {t2 - t0:.1f} s: "
            f"{one_by_one:,} via service.tenants.create_tenant ({rate_one:,.0f}/s), "
            f"{batched:,} by batched INSERTs of the same rows, {BATCH:,} tenants per "
            f"transaction ({rate_batch:,.0f}/s){analyzed}")


# -- one backend -----------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, rng: random.Random
                ) -> tuple[list[Row], list[str], list[str]]:
    rows: list[Row] = []
    profiles: list[str] = []
    notes: list[str] = []
    n, grown_to, iters = args.tenants, args.grow_to, args.iters

    def record(result: Result, stage: int) -> Result:
        result.backend = backend
        rows.append(Row(result, stage))
        print(f"  {format_row(rows[-1])}", file=sys.stderr, flush=True)
        return result

    def measure(server: ServerProcess, tenants: int, grown: bool) -> None:
        ops, admin = latencies(server.url, server.admin_key, tenants, rng)
        try:
            for name in ("list_tenants", "list_pro", "health_metrics", "get_usage"):
                result = ops[name](iters)
                if name == "health_metrics":
                    result.target = health_target(grown, tenants)
                record(result, tenants)
                if args.profile_misses and result.verdict == "MISS":
                    profiles.append(profile_op(f"{backend} {name} @{tenants}", ops[name],
                                               iters, server.pid))
        finally:
            admin.close()

    def profile_onboarding(server: ServerProcess) -> None:
        # Last, so that the measured stores hold exactly n and grown_to tenants.
        count = min(1000, n)
        profiles.append(profile_op(
            f"{backend} onboard (re-run on the final store)",
            lambda k: onboard(server.url, server.admin_key, k, args.clients,
                              first=PROFILE_FIRST), count, server.pid))

    print(f"[{backend}] onboarding {n:,} tenants ...", file=sys.stderr, flush=True)
    with throwaway_store(backend, args.database_url, db_prefix="bench_server_",
                         dir_prefix=f"nexus-bench-tenants-{backend}-",
                         tmp_parent=args.tmp_dir) as (root, url):
        data_dir, log = root / "data", root / "server.log"
        server = ServerProcess(data_dir, url, log, args.server_log_level)
        try:
            onboarding = onboard(server.url, server.admin_key, n, args.clients,
                                 server_pid=server.pid)
            onboarding.target = onboard_target(n)
            record(onboarding, n)
            measure(server, n, False)
            if grown_to <= n and args.profile_misses and onboarding.verdict == "MISS":
                profile_onboarding(server)
        finally:
            server.stop()
        if grown_to > n:
            print(f"[{backend}] growing the store to {grown_to:,} tenants ...",
                  file=sys.stderr, flush=True)
            notes.append(f"{backend} growth: " + grow(data_dir, url, n, grown_to))
            print(f"  {notes[-1]}", file=sys.stderr, flush=True)
            server = ServerProcess(data_dir, url, log, args.server_log_level)
            try:
                measure(server, grown_to, True)
                if args.profile_misses and onboarding.verdict == "MISS":
                    profile_onboarding(server)
            finally:
                server.stop()
    return rows, profiles, notes


# -- report ----------------------------------------------------------------------------

_HEADER = (f"{'backend':<10} {'tenants':>8} {'op':<14} {'iters':>6} {'p50 ms':>8} "
           f"{'p99 ms':>8} {'ops/s':>8}  {'target':<20} {'measured':>11} {'':<4}  note")


def format_row(row: Row) -> str:
    r = row.result
    target = r.target.text if r.target else "-"
    return (f"{r.backend:<10} {row.stage:>8} {r.op:<14} {r.iters:>6} {r.p50_ms:>8.3f} "
            f"{r.p99_ms:>8.3f} {r.ops_per_s:>8.1f}  {target:<20} {r.measured:>11} "
            f"{r.verdict:<4}  {r.note}")


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_backend_option(parser)
    parser.add_argument("--quick", action="store_true",
                        help="1,000 tenants grown to 10,000, 50 iterations per latency")
    parser.add_argument("--tenants", type=int, default=None,
                        help="tenants onboarded over HTTP (default 10,000; 1,000 with --quick)")
    parser.add_argument("--grow-to", type=int, default=None,
                        help="tenants in the store for the second measurement "
                             "(default 100,000; 10,000 with --quick)")
    parser.add_argument("--clients", type=int, default=8,
                        help="parallel onboarding clients (default 8)")
    parser.add_argument("--iters", type=int, default=None,
                        help="iterations per latency (default 200; 50 with --quick)")
    add_database_url_option(parser, "bench_server_")
    parser.add_argument("--tmp-dir", default=None,
                        help="parent of the temporary data directories (default: $TMPDIR)")
    parser.add_argument("--server-log-level", default="info",
                        help="the server's --log-level (default info, as deployed)")
    parser.add_argument("--profile-misses", action="store_true",
                        help="re-run a missed latency loop under py-spy attached to the server "
                             "and print its hottest functions")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the server is stopped and the temporary directory
    # and database are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scale = 10 if args.quick else 1
    args.tenants = args.tenants or 10_000 // scale
    args.grow_to = args.grow_to or 100_000 // scale
    args.iters = args.iters or 200 // (4 if args.quick else 1)

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    header = machine_lines(args.tmp_dir, args.database_url if "postgresql" in backends
                           else None)
    rows: list[Row] = []
    profiles: list[str] = []
    notes: list[str] = []
    for backend in backends:
        r, p, s = run_backend(backend, args, random.Random(1234))
        rows += r
        profiles += p
        notes += s
    header.append(f"uptime:    {uptime()}  (at the end)")
    title = (f"nexus tenants benchmark: {args.tenants:,} onboarded over HTTP by "
             f"{args.clients} clients, then grown to {args.grow_to:,}"
             + (" (--quick)" if args.quick else ""))
    by_result = {id(row.result): row for row in rows}
    print_report(title, header + notes, [row.result for row in rows], profiles,
                 format_fn=lambda r: format_row(by_result[id(r)]), table_header=_HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
