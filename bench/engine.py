"""Micro-benchmark of the embedded Nexus engine through the public client API.

Run from the repository root::

    .venv/bin/python bench/engine.py                      # both backends, full size
    .venv/bin/python bench/engine.py --backend sqlite --quick
    .venv/bin/python bench/engine.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Every operation goes through ``nexus.connect(config={"data_dir": ..., "database_url": ...})``
and the methods of :class:`nexus.NexusClient`; nothing reaches below the client. Each
backend gets a fresh temporary data directory and, for PostgreSQL, a throw-away database
``bench_<random>`` created on the server named by ``--database-url`` and dropped at the end.

Operations (one line each per backend):

``write_1k``     durable 1 KiB write of a new file (distinct random bytes), 4 directories
``read_1k``      1 KiB read of one of those files, in random order
``append_1k``    1 KiB append, rotating over a handful of files (append rewrites the file,
                 so the cost grows with the file; the note gives the final file size)
``mkdir``        creation of a new directory (4 parent directories)
``list_1000``    full non-recursive ``list()`` of a directory of 1,000 files
``fill_100k``    creation of the 100,000 entries of the paging test (threads, empty files);
                 one sample per entry, ops/s is entries per wall-clock second
``page_100k``    ``iter_list()`` through the 100,000-entry directory, one sample per pass

A tenant's user, with an API key (the path every tenant request takes: key, rate bucket,
permission check, quota, audit), against the floor of the same disk in the same run:

``floor_create``  a durable 1 KiB create in the data directory: write, fsync, rename,
                  directory fsync
``user_write``    a tenant owner's 1 KiB write of a new file; SQL statements per write
                  (all of the process's connections, the audit writer's included)
``user_read``     the same user reading those files; SQL statements per read

``--quick`` divides every iteration count (and the paging directory) by 10.
``--profile-misses`` re-runs every operation that misses its target under cProfile and
prints the 15 functions with the largest cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common
import nexus
from _common import (
    Samples,
    add_backend_option,
    add_database_url_option,
    data_dir_line,
    date_line,
    durable_create_samples,
    load_average,
    machine_line,
    postgres_version,
    python_version,
    script_parser,
    tally,
    throwaway_store,
    top_functions,
)

KIB = 1024
WRITE_DIRS = 4
APPEND_FILES = 8
MKDIR_PARENTS = 4
LIST_SIZE = 1_000
PAGE_SIZE_ENTRIES = 100_000


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal for one operation (the targets are set for the SQLite backend)."""

    text: str
    #: True: met; False: missed; None: not applicable (e.g. the directory was not filled).
    check: Callable[[Result], bool | None]


@dataclass
class Result(Samples):
    backend: str
    op: str
    samples: list[float]  # seconds, one per iteration
    wall: float | None = None  # seconds; set when the samples overlap (threads)
    note: str = ""
    entries: int | None = None  # size of the directory a listing went through
    target: Target | None = None


    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        met = self.target.check(self)
        return "n/a" if met is None else "PASS" if met else "MISS"


def sqlite_targets(scale: int) -> dict[str, Target]:
    """The SQLite goals; the paging goal scales with the directory in ``--quick`` mode."""
    page_entries = PAGE_SIZE_ENTRIES // scale
    page_limit = 2.0 / scale
    page_text = (f"<= {page_limit:g} s / {page_entries // 1000}k" if scale != 1
                 else "<= 2 s / 100k")
    return {
        "write_1k": Target(">= 1000 ops/s", lambda r: r.ops_per_s >= 1000),
        "read_1k": Target(">= 5000 ops/s", lambda r: r.ops_per_s >= 5000),
        "list_1000": Target("<= 10 ms median", lambda r: r.p50_ms <= 10),
        "page_100k": Target(
            page_text,
            lambda r: None if r.entries != page_entries else r.p50_ms / 1000 <= page_limit),
    }


# -- timing helpers --------------------------------------------------------------------


#: Set by :func:`profile_op`: the timed loop (only) then runs under this profiler.
_PROFILER: cProfile.Profile | None = None


def timed(fn: Callable[[int], Any], n: int) -> list[float]:
    """:func:`_common.timed`, under :func:`profile_op`'s profiler when one is set."""
    return _common.timed(fn, n, profiler=_PROFILER)


def fill_directory(client: nexus.NexusClient, directory: str, count: int, *, threads: int,
                   budget_s: float, data: bytes = b"") -> tuple[int, float, list[float]]:
    """Create ``count`` files in ``directory`` from ``threads`` threads sharing ``client``.

    Stops early when ``budget_s`` seconds have passed. Returns (entries created, wall
    seconds, per-write latencies).
    """
    client.mkdir(directory)
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    start = time.perf_counter()
    deadline = start + budget_s

    def worker(slot: int) -> None:
        mine = latencies[slot]
        clock = time.perf_counter
        try:
            while True:
                with lock:
                    i = next(counter)
                if i >= count or errors:
                    return
                t0 = clock()
                if t0 > deadline:
                    return
                client.write(f"{directory}/e{i:06d}", data)
                mine.append(clock() - t0)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    samples = [s for per_thread in latencies for s in per_thread]
    return len(samples), wall, samples


# -- the operations --------------------------------------------------------------------


@dataclass
class Plan:
    """Iteration counts and sizes for one run."""

    scale: int
    page_size: int
    fill_threads: int
    fill_budget_s: float
    seed: int = 1234
    write_n: int = 2000
    read_n: int = 2000
    append_n: int = 2000
    mkdir_n: int = 2000
    list_n: int = 200
    page_n: int = 3

    def scaled(self, n: int) -> int:
        return max(1, n // self.scale)

    @property
    def page_entries(self) -> int:
        return PAGE_SIZE_ENTRIES // self.scale


@dataclass
class State:
    """What the operations leave behind for the later ones (and for the profiler)."""

    written: list[str] = field(default_factory=list)
    list_dir: str = ""
    page_dir: str = ""
    page_entries: int = 0
    runs: Iterator[int] = field(default_factory=itertools.count)


def op_write(client: nexus.NexusClient, n: int, state: State, rng: random.Random) -> Result:
    run = next(state.runs)
    dirs = [f"/bench/write{run}/d{k}" for k in range(WRITE_DIRS)]
    for d in dirs:
        client.mkdir(d)
    payloads = [rng.randbytes(KIB) for _ in range(n)]
    paths = [f"{dirs[i % WRITE_DIRS]}/f{i:06d}.bin" for i in range(n)]
    for i in range(min(20, n)):  # warm-up: pool connections, blob shard directories
        client.write(f"/bench/write{run}/warm/w{i}", payloads[i])
    samples = timed(lambda i: client.write(paths[i], payloads[i]), n)
    state.written.extend(paths)
    return Result("", "write_1k", samples,
                  note=f"new file each time, {WRITE_DIRS} dirs, random bytes")


def op_read(client: nexus.NexusClient, n: int, state: State, rng: random.Random) -> Result:
    if not state.written:
        raise RuntimeError("read_1k needs the files of write_1k")
    order = [rng.choice(state.written) for _ in range(n)]
    for path in order[:20]:
        client.read(path)
    if len(client.read(order[0])) != KIB:
        raise AssertionError("read returned the wrong size")
    samples = timed(lambda i: client.read(order[i]), n)
    return Result("", "read_1k", samples, note=f"random order over {len(state.written)} files")


def op_append(client: nexus.NexusClient, n: int, state: State, rng: random.Random) -> Result:
    run = next(state.runs)
    files = [f"/bench/append{run}/a{k}.log" for k in range(APPEND_FILES)]
    for path in files:
        client.write(path, b"")
    chunk = rng.randbytes(KIB)
    samples = timed(lambda i: client.append(files[i % APPEND_FILES], chunk), n)
    final = client.stat(files[0])["size"]
    tenth = max(1, n // 10)
    early = statistics.median(samples[:tenth]) * 1000
    late = statistics.median(samples[-tenth:]) * 1000
    return Result("", "append_1k", samples,
                  note=f"{APPEND_FILES} files rotating, each rewritten, grows to "
                       f"{final // KIB} KiB; median first/last 10%: {early:.2f}/{late:.2f} ms")


def op_mkdir(client: nexus.NexusClient, n: int, state: State, rng: random.Random) -> Result:
    run = next(state.runs)
    parents = [f"/bench/mkdir{run}/p{k}" for k in range(MKDIR_PARENTS)]
    for p in parents:
        client.mkdir(p)
    samples = timed(lambda i: client.mkdir(f"{parents[i % MKDIR_PARENTS]}/d{i:06d}"), n)
    return Result("", "mkdir", samples, note=f"new directory each time, {MKDIR_PARENTS} parents")


def op_list(client: nexus.NexusClient, n: int, state: State, rng: random.Random) -> Result:
    if not state.list_dir:
        state.list_dir = "/bench/list1000"
        fill_directory(client, state.list_dir, LIST_SIZE, threads=4, budget_s=float("inf"),
                       data=b"x" * KIB)
    directory = state.list_dir
    for _ in range(2):
        client.list(directory)

    def one(_: int) -> None:
        if len(client.list(directory)) != LIST_SIZE:
            raise AssertionError("list returned the wrong number of entries")

    samples = timed(one, n)
    return Result("", "list_1000", samples, entries=LIST_SIZE,
                  note="non-recursive, full listing via list()")


def op_page(client: nexus.NexusClient, n: int, state: State, rng: random.Random, *,
            page_size: int) -> Result:
    directory, expected = state.page_dir, state.page_entries

    def one(_: int) -> None:
        count = sum(1 for _ in client.iter_list(directory, page_size=page_size))
        if count != expected:
            raise AssertionError(f"iter_list returned {count} entries, expected {expected}")

    samples = timed(one, n)
    return Result("", "page_100k", samples, entries=expected,
                  note=f"{expected} entries, page_size={page_size}, "
                       f"{expected / statistics.median(samples):,.0f} entries/s")


def op_fill(client: nexus.NexusClient, plan: Plan, state: State) -> Result:
    state.page_dir = "/bench/page"
    created, wall, samples = fill_directory(client, state.page_dir, plan.page_entries,
                                            threads=plan.fill_threads,
                                            budget_s=plan.fill_budget_s)
    state.page_entries = created
    complete = created == plan.page_entries
    note = (f"{created} empty files, {plan.fill_threads} threads, {wall:.1f} s total"
            + ("" if complete else
               f"; STOPPED at the {plan.fill_budget_s:.0f} s budget "
               f"(projected {plan.page_entries / created * wall / 60:.1f} min for "
               f"{plan.page_entries})"))
    return Result("", "fill_100k", samples, wall=wall, note=note)


# -- a tenant's user ------------------------------------------------------------------


class StatementCounter:
    """SQL statements executed by every engine of this process while counting."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


_STATEMENTS: StatementCounter | None = None


def counted(fn: Callable[[int], Any], n: int) -> tuple[list[float], float]:
    """:func:`timed` samples and SQL statements per call."""
    global _STATEMENTS
    _STATEMENTS = _STATEMENTS or StatementCounter()
    before = _STATEMENTS.count
    samples = timed(fn, n)
    return samples, (_STATEMENTS.count - before) / n


def tenant_user(admin: nexus.NexusClient, config: dict[str, str]) -> nexus.NexusClient:
    """An embedded client with the key of a new tenant's owner."""
    admin.create_tenant("bench", plan="enterprise")
    key = admin._call_rpc("admin_create_key", {"user_id": "owner", "name": "owner",
                                               "tenant_id": "bench"})["api_key"]
    admin.rebac_create(("user", "owner"), "owner", ("file", "/tenants/bench"),
                       tenant_id="bench")
    return nexus.connect(config={**config, "api_key": key})


def user_ops(user: nexus.NexusClient, plan: Plan, rng: random.Random,
             data_dir: str) -> list[Result]:
    n = plan.scaled(plan.write_n)
    floor = Result("", "floor_create", durable_create_samples(Path(data_dir), n),
                   note="1 KiB write + fsync + rename + directory fsync, data directory")
    root = "/tenants/bench/shared/user"
    payloads = [rng.randbytes(KIB) for _ in range(n)]
    for i in range(20):
        user.write(f"{root}/warm{i}", payloads[i])
        user.read(f"{root}/warm{i}")
    samples, per_write = counted(lambda i: user.write(f"{root}/f{i:06d}", payloads[i]), n)
    ratio = statistics.median(samples) / statistics.median(floor.samples)
    write = Result("", "user_write", samples,
                   note=f"{ratio:.2f}x floor_create; {per_write:.1f} SQL statements/write "
                        "(target <= 4)")
    order = [rng.randrange(n) for _ in range(n)]
    samples, per_read = counted(lambda i: user.read(f"{root}/f{order[i]:06d}"), n)
    read = Result("", "user_read", samples,
                  note=f"{per_read:.1f} SQL statements/read (target <= 2)")
    return [floor, write, read]


# -- backends --------------------------------------------------------------------------


@contextmanager
def backend_client(backend: str, admin_url: str, tmp_parent: str | None
                   ) -> Iterator[tuple[nexus.NexusClient, dict[str, str]]]:
    with throwaway_store(backend, admin_url, db_prefix="bench_",
                         dir_prefix=f"nexus-bench-{backend}-",
                         tmp_parent=tmp_parent) as (data_dir, url):
        config = {"data_dir": str(data_dir)}
        if url is not None:
            config["database_url"] = url
        with nexus.connect(config=config) as client:
            yield client, config


def run_backend(backend: str, plan: Plan,
                args: argparse.Namespace) -> tuple[list[Result], list[str]]:
    """Every operation on one backend; returns the results and any profiles."""
    rng = random.Random(plan.seed)
    state = State()
    targets = sqlite_targets(plan.scale) if backend == "sqlite" else {}
    results: list[Result] = []
    ops: dict[str, Callable[[nexus.NexusClient, int], Result]] = {
        "write_1k": lambda c, n: op_write(c, n, state, rng),
        "read_1k": lambda c, n: op_read(c, n, state, rng),
        "append_1k": lambda c, n: op_append(c, n, state, rng),
        "mkdir": lambda c, n: op_mkdir(c, n, state, rng),
        "list_1000": lambda c, n: op_list(c, n, state, rng),
        "page_100k": lambda c, n: op_page(c, n, state, rng, page_size=plan.page_size),
    }
    counts = {"write_1k": plan.write_n, "read_1k": plan.read_n, "append_1k": plan.append_n,
              "mkdir": plan.mkdir_n, "list_1000": plan.list_n, "page_100k": plan.page_n}

    def record(result: Result) -> None:
        result.backend = backend
        result.target = targets.get(result.op)
        results.append(result)
        print(f"  {format_row(result)}", file=sys.stderr, flush=True)

    print(f"[{backend}] running ...", file=sys.stderr, flush=True)
    with backend_client(backend, args.database_url, args.tmp_dir) as (client, config):
        with tenant_user(client, config) as user:
            for result in user_ops(user, plan, rng, config["data_dir"]):
                record(result)
        for op in ("write_1k", "read_1k", "append_1k", "mkdir", "list_1000"):
            record(ops[op](client, plan.scaled(counts[op])))
        record(op_fill(client, plan, state))
        record(ops["page_100k"](client, plan.scaled(counts["page_100k"])))

        profiles = [profile_op(backend, r.op, ops[r.op], client, counts[r.op], plan)
                    for r in results if args.profile_misses and r.verdict == "MISS"]
    return results, profiles


def profile_op(backend: str, op: str, fn: Callable[[nexus.NexusClient, int], Result],
               client: nexus.NexusClient, n: int, plan: Plan) -> str:
    """Re-run ``op``'s timed loop under cProfile; the top functions by cumulative time.

    Setup and warm-up are not profiled, and the benchmark's own frames are hidden, so
    the list starts at the client API.
    """
    global _PROFILER
    n = max(1, min(n, 1000) // plan.scale) if op != "page_100k" else 1
    _PROFILER = cProfile.Profile()
    try:
        result = fn(client, n)
    finally:
        profiler, _PROFILER = _PROFILER, None
    print(f"  profiled {backend} {op}", file=sys.stderr, flush=True)
    return (f"=== profile: {backend} {op} ({n} iterations under cProfile, "
            f"{sum(result.samples):.3f} s incl. profiler overhead) ===\n"
            f"{top_functions(profiler, 'engine.py')}")


# -- report ----------------------------------------------------------------------------

_HEADER = (f"{'backend':<10} {'op':<10} {'iters':>7} {'median ms':>10} {'p99 ms':>10} "
           f"{'ops/s':>10}  {'target (sqlite)':<18} {'':<4}  note")


def format_row(r: Result) -> str:
    target = r.target.text if r.target else "-"
    return (f"{r.backend:<10} {r.op:<10} {r.iters:>7} {r.p50_ms:>10.3f} {r.p99_ms:>10.3f} "
            f"{r.ops_per_s:>10.1f}  {target:<18} {r.verdict:<4}  {r.note}")


def machine_lines(args: argparse.Namespace, backends: list[str]) -> list[str]:
    try:
        from importlib.metadata import version

        nexus_version = version("nexus-saas")
    except Exception:  # noqa: BLE001
        nexus_version = "?"
    tmp = args.tmp_dir or tempfile.gettempdir()
    lines = [
        date_line(),
        machine_line(),
        f"python:    {python_version()}",
        f"load avg:  {load_average()} (1/5/15 min, at start; other work skews the figures)",
        f"nexus:     {nexus_version}; SQLite {sqlite3.sqlite_version}",
        data_dir_line(tmp),
    ]
    if "postgresql" in backends:
        lines.append(f"postgres:  {postgres_version(args.database_url)} "
                     f"at {redact(args.database_url)}")
    return lines


def redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}{sep}{user}@{host}"
    return url


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_database_url_option(parser, "bench_")
    add_backend_option(parser)
    parser.add_argument("--quick", action="store_true",
                        help="10x fewer iterations and a 10,000-entry paging directory")
    parser.add_argument("--page-size", type=int, default=1000,
                        help="iter_list page size for page_100k (default 1000)")
    parser.add_argument("--fill-threads", type=int, default=4,
                        help="threads creating the paging directory (default 4)")
    parser.add_argument("--fill-budget", type=float, default=300.0,
                        help="seconds allowed for creating the paging directory; the test "
                             "pages through whatever exists when it runs out (default 300)")
    parser.add_argument("--tmp-dir", default=None,
                        help="parent of the temporary data directories (default: $TMPDIR)")
    parser.add_argument("--profile-misses", action="store_true",
                        help="re-run each operation that misses its target under cProfile "
                             "and print the top 15 cumulative functions")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    plan = Plan(scale=10 if args.quick else 1, page_size=args.page_size,
                fill_threads=args.fill_threads, fill_budget_s=args.fill_budget)
    header = machine_lines(args, backends)
    results: list[Result] = []
    profiles: list[str] = []
    for backend in backends:
        backend_results, backend_profiles = run_backend(backend, plan, args)
        results.extend(backend_results)
        profiles.extend(backend_profiles)

    print()
    print("nexus engine benchmark" + (" (--quick: 10x smaller)" if args.quick else ""))
    for line in header:
        print(line)
    print()
    print(_HEADER)
    for r in results:
        print(format_row(r))
    print()
    print("targets: " + tally((r.op, r.verdict) for r in results
                              if r.verdict in ("PASS", "MISS")))
    for text in profiles:
        print()
        print(text)

    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": header, "quick": args.quick, "results": [
                {"backend": r.backend, "op": r.op, "iters": r.iters,
                 "median_ms": r.p50_ms, "p99_ms": r.p99_ms, "ops_per_s": r.ops_per_s,
                 "target": r.target.text if r.target else None, "verdict": r.verdict or None,
                 "note": r.note} for r in results]}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
