"""Benchmark of a Nexus server through the remote client (HTTP), as the guide drives it.

Run from the repository root::

    .venv/bin/python bench/server.py --start sqlite            # start a server, full size
    .venv/bin/python bench/server.py --start postgresql --quick
    .venv/bin/python bench/server.py http://127.0.0.1:8080 "$(cat nexus-data/admin.key)"
    .venv/bin/python bench/server.py URL KEY --server-pid 12345   # + the server's RSS

The measurement uses only the public client API of the guide:
``nexus.connect(config={"url": ..., "api_key": ...})``, ``mkdir``, ``write``, ``read``,
``read_stream``, ``list``, ``rebac_create`` and ``_call_rpc("admin_create_key", ...)``,
so it can be pointed at any server that speaks this API. With ``--start`` the script
runs ``python -m nexus.cli serve`` itself over a temporary data directory (and, for
``postgresql``, a throw-away database ``bench_server_<random>`` on ``--database-url``),
reads the administrator's key from ``<data-dir>/admin.key`` and stops the server
(SIGTERM) at the end; everything is removed even if the run fails.

Floors, measured first in the same run (machines differ ~2x; the targets are ratios):

``floor_rt``       GET of a bare ASGI app on uvicorn (``_bare_app.py``) through the same
                   keep-alive httpx client: the round-trip floor ("rt")
``floor_create``   a durable 1 KiB create in the data directory: write, fsync, rename,
                   directory fsync ("create")
``floor_mixed8``   8 threads GET the bare app: the throughput floor of ``mixed_8``

Operations (one line each; targets are issue 16's, as multiples of the floors):

``health``         ``GET /health``: the server's own least call (HTTP, a thread hop,
                   ``SELECT 1``)
``onboard``        the guide's onboarding of one tenant: ``mkdir /tenants/<id>`` + ``write
                   .tenant.json`` (plan ``enterprise``) + ``admin_create_key`` + owner
                   ``rebac_create``; one sample per tenant (the four calls)
``write_1k``       1 KiB write of a new file by a tenant's owner (8 tenants in rotation)
``read_1k``        1 KiB read of one of those files by its owner
``denied_read``    a user of the next tenant reads that file: NexusPermissionError
``list_1000``      ``list()`` of a 1,000-file directory by the tenant's owner
``mixed_8``        8 threads, each its own client and a different tenant's owner: reads,
                   writes, a small listing and mkdirs; ops/s over the wall clock
``upload``         1 GiB ``write(path, generator of 1 MiB chunks)`` (128 MiB with --quick)
``download``       the same file through ``read_stream``
``server_rss``     the larger peak RSS growth of the server during upload and download

``--quick`` runs 10x fewer iterations, a 5 s mixed phase and 128 MiB streams.
``--profile-misses`` re-runs each missed operation with ``py-spy record`` attached to
the server process and prints its hottest functions.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import nexus
from _common import (
    MB,
    RssSampler,
    Samples,
    ServerProcess,
    add_database_url_option,
    bare_app,
    cpu_seconds,
    data_dir_line,
    date_line,
    durable_create_samples,
    git,
    machine_line,
    postgres_version,
    python_version,
    script_parser,
    tally,
    throwaway_store,
    timed,
    uptime,
)

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB
WORK_TENANTS = 8  # tenants whose owners run the latency and mixed workloads
USER = "owner"  # the owner user created in each onboarded tenant
MIXED_READ_FILES = 50
MIXED_LIST_FILES = 20
#: One client's repeating operation mix in ``mixed_8``.
MIXED_CYCLE = ("read", "write", "read", "list", "read", "write", "read", "mkdir", "read",
               "write")


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal: ``measure(result)`` gives the figure it judges and whether it is met
    (``None``: not applicable)."""

    text: str
    measure: Callable[[Result], tuple[str, bool] | None]


@dataclass
class Result(Samples):
    backend: str
    op: str
    samples: list[float]  # seconds, one per call (empty for byte streams)
    wall: float | None = None  # seconds; set when samples overlap (threads) or for streams
    note: str = ""
    figures: dict[str, float | None] = field(default_factory=dict)
    target: Target | None = None


    @property
    def measured(self) -> str:
        judged = self.target.measure(self) if self.target else None
        return judged[0] if judged else ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        judged = self.target.measure(self)
        return "n/a" if judged is None else "PASS" if judged[1] else "MISS"


def p50_at_most(ms: float) -> Target:
    return Target(f"p50 <= {ms:g} ms", lambda r: (f"{r.p50_ms:.3f} ms", r.p50_ms <= ms))


def ops_at_least(ops: float) -> Target:
    return Target(f">= {ops:,.0f} ops/s",
                  lambda r: (f"{r.ops_per_s:,.0f} ops/s", r.ops_per_s >= ops))


def figure_target(text: str, key: str, unit: str, ok: Callable[[float], bool]) -> Target:
    def measure(r: Result) -> tuple[str, bool] | None:
        value = r.figures.get(key)
        return None if value is None else (f"{value:,.0f} {unit}", ok(value))
    return Target(text, measure)


#: The floors of this machine, measured in the same run (seconds; ops/s for ``mixed``):
#: ``rt`` a bare ASGI app's GET round trip, ``create`` a durable 1 KiB file create,
#: ``mixed`` the bare app's 8-client throughput. Filled in by the floor rows.
Floors = dict[str, float]


def ratio_at_most(limit: float, floors: Floors, floor: Callable[[Floors], float],
                  text: str) -> Target:
    """p50 at most ``limit`` times ``floor(floors)``."""
    def measure(r: Result) -> tuple[str, bool] | None:
        try:
            base = floor(floors)
        except KeyError:
            return None
        ratio = r.p50_ms / 1000 / base
        return f"{ratio:.2f}x", ratio <= limit
    return Target(f"<= {limit:g}x {text}", measure)


def share_at_least(limit: float, floors: Floors) -> Target:
    def measure(r: Result) -> tuple[str, bool] | None:
        if "mixed" not in floors:
            return None
        share = r.ops_per_s / floors["mixed"]
        return f"{share:.2f}x", share >= limit
    return Target(f">= {limit:g}x bare 8", measure)


def targets(floors: Floors) -> dict[str, Target]:
    """Issue 16's goals, as ratios to the floors of the same run."""
    write = lambda f: f["rt"] + f["create"]  # noqa: E731
    return {
        "onboard": ratio_at_most(1.5, floors, lambda f: 4 * write(f), "4 writes"),
        "write_1k": ratio_at_most(1.5, floors, write, "rt+create"),
        "read_1k": ratio_at_most(1.5, floors, lambda f: f["rt"], "rt"),
        "denied_read": ratio_at_most(1.3, floors, lambda f: f["rt"], "rt"),
        "list_1000": ratio_at_most(10, floors, lambda f: f["rt"], "rt"),
        "mixed_8": share_at_least(0.35, floors),
        "upload": figure_target(">= 250 MB/s", "mb_per_s", "MB/s", lambda v: v >= 250),
        "download": figure_target(">= 500 MB/s", "mb_per_s", "MB/s", lambda v: v >= 500),
        "server_rss": figure_target("< 150 MB growth", "server_growth_mb", "MB",
                                    lambda v: v < 150),
    }


# -- the server under test -------------------------------------------------------------


@contextmanager
def started_server(backend: str, admin_url: str, tmp_parent: str | None,
                   log_level: str = "info") -> Iterator[ServerProcess]:
    """A server over a new temporary data directory (and PostgreSQL database)."""
    with throwaway_store(backend, admin_url, db_prefix="bench_server_",
                         dir_prefix=f"nexus-bench-server-{backend}-",
                         tmp_parent=tmp_parent) as (root, url):
        server = ServerProcess(root / "data", url, root / "server.log", log_level)
        try:
            yield server
        finally:
            server.stop()


# -- the workload ----------------------------------------------------------------------


@dataclass
class Plan:
    scale: int  # 1 or 10 (--quick)
    onboard_n: int = 1000
    write_n: int = 2000
    read_n: int = 2000
    denied_n: int = 2000
    list_n: int = 200
    mixed_s: float = 20.0
    stream_bytes: int = GIB

    def n(self, count: int) -> int:
        return max(1, count // self.scale)


@dataclass
class Tenant:
    tenant_id: str
    api_key: str
    client: nexus.NexusClient

    @property
    def root(self) -> str:
        return f"/tenants/{self.tenant_id}"


class Workload:
    """The operations, against one server, through the guide's client API."""

    def __init__(self, url: str, admin_key: str, server_pid: int | None, plan: Plan,
                 seed: int = 1234, data_dir: Path | None = None) -> None:
        self.url = url
        self.server_pid = server_pid
        self.data_dir = data_dir  # known with --start: the disk baseline is measured there
        self.plan = plan
        self.rng = random.Random(seed)
        self.admin = self.connect(admin_key)
        self.prefix = f"b{uuid.uuid4().hex[:6]}"  # tenant ids: unique on a shared server
        self.runs = itertools.count()
        self.tenants: list[Tenant] = []
        self.written: list[tuple[int, str]] = []  # (tenant index, path) of write_1k files
        self.list_dir: str | None = None
        self.big_file: str | None = None
        self.big_size = 0
        self.floors: Floors = {}

    def timed(self, fn: Callable[[int], Any], n: int) -> tuple[list[float], str]:
        """:func:`timed`, plus the server's CPU time per call (user + system, all its
        threads; psutil's clock ticks are 10 ms, so it needs many calls)."""
        before = cpu_seconds(self.server_pid)
        samples = timed(fn, n)
        after = cpu_seconds(self.server_pid)
        if before is None or after is None:
            return samples, ""
        return samples, f"; server CPU {(after - before) / n * 1000:.2f} ms/call"

    def connect(self, api_key: str, timeout: float = 60.0) -> nexus.NexusClient:
        return nexus.connect(config={"url": self.url, "api_key": api_key, "timeout": timeout})

    def close(self) -> None:
        for tenant in self.tenants:
            tenant.client.close()
        self.admin.close()

    # -- the floors (this machine, this run) -------------------------------------------

    def op_floor_rt(self, n: int) -> Result:
        """A GET of a bare ASGI app on uvicorn through a keep-alive httpx client: the
        least a round trip costs here (no framework, no database, no thread hop)."""
        with bare_app() as url, httpx.Client(base_url=url, timeout=60) as http:
            for _ in range(20):
                http.get("/")
            samples = timed(lambda _: http.get("/"), n)
        result = Result("", "floor_rt", samples,
                        note="GET of a bare ASGI app on uvicorn, same httpx client: the "
                             "round-trip floor")
        self.floors["rt"] = result.p50_ms / 1000
        return result

    def op_floor_create(self, n: int) -> Result:
        """A durable 1 KiB file create in the data directory (:func:`durable_create_samples`)."""
        where = Path(self.data_dir or tempfile.gettempdir())
        result = Result("", "floor_create", durable_create_samples(where, n),
                        note=f"1 KiB write + fsync + rename + directory fsync in {where}")
        self.floors["create"] = result.p50_ms / 1000
        return result

    def op_floor_mixed(self, duration: float) -> Result:
        """8 threads, each its own keep-alive httpx client, GET the bare app: the
        throughput floor ``mixed_8`` is compared with (same client machine, same GIL)."""
        with bare_app() as url:
            clients = [httpx.Client(base_url=url, timeout=60) for _ in range(8)]
            counts = [0] * len(clients)
            latencies: list[list[float]] = [[] for _ in clients]
            start = time.perf_counter() + 0.2
            deadline = start + duration

            def worker(c: int) -> None:
                http, lat, clock = clients[c], latencies[c], time.perf_counter
                http.get("/")
                while clock() < start:
                    time.sleep(0.001)
                while (begin := clock()) < deadline:
                    http.get("/")
                    lat.append(clock() - begin)
                    counts[c] += 1

            threads = [threading.Thread(target=worker, args=(c,)) for c in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for http in clients:
                http.close()
        wall = time.perf_counter() - start
        result = Result("", "floor_mixed8", [x for lat in latencies for x in lat], wall=wall,
                        note=f"8 threads GET the bare app, {wall:.1f} s")
        self.floors["mixed"] = result.ops_per_s
        return result

    # -- the server's own floor ----------------------------------------------------------

    def op_health(self, n: int) -> Result:
        """``GET /health`` with a bare keep-alive httpx client: HTTP, one worker-thread
        hop and ``SELECT 1`` — the least any call costs on this server and machine."""
        with httpx.Client(base_url=self.url, timeout=60) as http:
            for _ in range(20):
                http.get("/health")

            def one(_: int) -> None:
                if http.get("/health").status_code != 200:
                    raise AssertionError("the server is unhealthy")

            samples, cpu = self.timed(one, n)
        return Result("", "health", samples,
                      note="GET /health (httpx, no client library): HTTP + one thread hop "
                           f"+ SELECT 1, the floor of every call{cpu}")

    # -- onboarding --------------------------------------------------------------------

    def onboard_one(self, tenant_id: str) -> tuple[list[float], str]:
        """The guide's four calls; each call's duration and the owner's key."""
        clock = time.perf_counter
        root = f"/tenants/{tenant_id}"
        metadata = {
            "tenant_id": tenant_id, "name": f"Bench {tenant_id}", "plan": "enterprise",
            "created_at": dt.datetime.now().isoformat(), "status": "active",
            "limits": {"max_users": None, "max_storage_gb": None, "max_files": None},
            "usage": {"users": 0, "storage_gb": 0, "files": 0},
        }
        body = json.dumps(metadata, indent=2).encode()
        t0 = clock()
        self.admin.mkdir(root)
        t1 = clock()
        self.admin.write(f"{root}/.tenant.json", body)
        t2 = clock()
        key = self.admin._call_rpc("admin_create_key", {
            "user_id": USER, "name": f"{USER} (Tenant Admin)", "subject_type": "user",
            "tenant_id": tenant_id, "is_admin": False})["api_key"]
        t3 = clock()
        self.admin.rebac_create(subject=("user", USER), relation="owner",
                                object=("file", root), tenant_id=tenant_id)
        t4 = clock()
        return [t1 - t0, t2 - t1, t3 - t2, t4 - t3], key

    def op_onboard(self, n: int) -> Result:
        run = next(self.runs)
        for i in range(3):  # warm-up: open the pooled connections
            self.onboard_one(f"{self.prefix}-r{run}-w{i}")
        steps: list[list[float]] = []
        cpu0 = cpu_seconds(self.server_pid)
        for i in range(n):
            tenant_id = f"{self.prefix}-r{run}-{i:05d}"
            durations, key = self.onboard_one(tenant_id)
            steps.append(durations)
            if len(self.tenants) < WORK_TENANTS:
                self.tenants.append(Tenant(tenant_id, key, self.connect(key)))
        cpu1 = cpu_seconds(self.server_pid)
        cpu = ("" if cpu0 is None or cpu1 is None
               else f"; server CPU {(cpu1 - cpu0) / n * 1000:.2f} ms/tenant")
        names = ("mkdir", "metadata", "key", "grant")
        medians = "/".join(f"{statistics.median(s[k] for s in steps) * 1000:.2f}"
                           for k in range(len(names)))
        return Result("", "onboard", [sum(s) for s in steps],
                      note=f"{n} tenants; p50 ms {'/'.join(names)}: {medians}{cpu}")

    # -- single-call latencies ---------------------------------------------------------

    def op_write(self, n: int) -> Result:
        run = next(self.runs)
        for t in self.tenants:
            t.client.mkdir(f"{t.root}/shared/w{run}")
            t.client.write(f"{t.root}/shared/w{run}/warm", b"x" * KIB)
        payloads = [self.rng.randbytes(KIB) for _ in range(n)]
        targets = [(i % len(self.tenants), f"{self.tenants[i % len(self.tenants)].root}"
                    f"/shared/w{run}/f{i:06d}.bin") for i in range(n)]

        def one(i: int) -> None:
            k, path = targets[i]
            self.tenants[k].client.write(path, payloads[i])

        samples, cpu = self.timed(one, n)
        self.written = targets
        return Result("", "write_1k", samples,
                      note=f"new file, random bytes, {len(self.tenants)} tenants' owners "
                           f"in rotation{cpu}")

    def op_read(self, n: int) -> Result:
        picks = [self.rng.choice(self.written) for _ in range(n)]

        def one(i: int) -> None:
            k, path = picks[i]
            if len(self.tenants[k].client.read(path)) != KIB:
                raise AssertionError(f"read of {path} returned the wrong size")

        samples, cpu = self.timed(one, n)
        return Result("", "read_1k", samples, note=f"random file of write_1k, by its owner{cpu}")

    def op_denied(self, n: int) -> Result:
        picks = [self.rng.choice(self.written) for _ in range(n)]
        count = len(self.tenants)

        def one(i: int) -> None:
            k, path = picks[i]
            try:
                self.tenants[(k + 1) % count].client.read(path)
            except nexus.NexusPermissionError:
                return
            raise AssertionError(f"a user of another tenant could read {path}")

        samples, cpu = self.timed(one, n)
        return Result("", "denied_read", samples,
                      note=f"owner of the next tenant reads it -> NexusPermissionError{cpu}")

    def op_list(self, n: int) -> Result:
        owner = self.tenants[0]
        if self.list_dir is None:
            self.list_dir = f"{owner.root}/shared/list1000"
            self.admin.mkdir(self.list_dir)
            self.fill(self.list_dir, 1000, KIB)
        directory = self.list_dir
        for _ in range(2):
            owner.client.list(directory)

        def one(_: int) -> None:
            if len(owner.client.list(directory)) != 1000:
                raise AssertionError("list returned the wrong number of entries")

        samples, cpu = self.timed(one, n)
        return Result("", "list_1000", samples,
                      note=f"non-recursive list() by the tenant's owner (permission-filtered)"
                           f"{cpu}")

    def fill(self, directory: str, count: int, size: int, threads: int = 4) -> None:
        """Untimed: ``count`` files of ``size`` random bytes, written by the admin."""
        payloads = [self.rng.randbytes(size) for _ in range(count)]
        names = iter(range(count))
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    i = next(names, None)
                if i is None:
                    return
                self.admin.write(f"{directory}/f{i:05d}.bin", payloads[i])

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    # -- concurrency -------------------------------------------------------------------

    def op_mixed(self, duration: float) -> Result:
        """8 threads, each with its own client and a different tenant's owner."""
        run = next(self.runs)
        bases = [f"{t.root}/shared/mixed{run}" for t in self.tenants]
        for base in bases:  # untimed setup, by the admin
            for sub in ("r", "l", "w", "d"):
                self.admin.mkdir(f"{base}/{sub}")
            self.fill(f"{base}/r", MIXED_READ_FILES, KIB)
            self.fill(f"{base}/l", MIXED_LIST_FILES, KIB)
        clients = [self.connect(t.api_key) for t in self.tenants]
        start_box: dict[str, float] = {}
        barrier = threading.Barrier(len(clients),
                                    action=lambda: start_box.update(t=time.perf_counter()))
        latencies: list[list[float]] = [[] for _ in clients]
        ends = [0.0] * len(clients)
        kinds: collections.Counter[str] = collections.Counter()
        errors: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()

        def worker(c: int) -> None:
            client, base = clients[c], bases[c]
            rng = random.Random(c)
            payload = rng.randbytes(KIB)
            for j in range(5):  # warm-up (untimed)
                client.read(f"{base}/r/f{j:05d}.bin")
            mine: collections.Counter[str] = collections.Counter()
            failed: collections.Counter[str] = collections.Counter()
            lat = latencies[c]
            clock = time.perf_counter
            barrier.wait()
            deadline = start_box["t"] + duration
            i = 0
            while clock() < deadline:
                kind = MIXED_CYCLE[i % len(MIXED_CYCLE)]
                begin = clock()
                try:
                    if kind == "read":
                        client.read(f"{base}/r/f{rng.randrange(MIXED_READ_FILES):05d}.bin")
                    elif kind == "write":
                        client.write(f"{base}/w/f{i:07d}.bin", payload)
                    elif kind == "list":
                        client.list(f"{base}/l")
                    else:
                        client.mkdir(f"{base}/d/d{i:07d}")
                except nexus.NexusError as exc:
                    failed[type(exc).__name__] += 1
                lat.append(clock() - begin)
                mine[kind] += 1
                i += 1
            ends[c] = clock()
            with lock:
                kinds.update(mine)
                errors.update(failed)

        server_cpu0, client_cpu0 = cpu_seconds(self.server_pid), cpu_seconds(os.getpid())
        threads = [threading.Thread(target=worker, args=(c,)) for c in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        server_cpu1, client_cpu1 = cpu_seconds(self.server_pid), cpu_seconds(os.getpid())
        for client in clients:
            client.close()
        wall = max(ends) - start_box["t"]
        samples = [x for lat in latencies for x in lat]
        mix = " ".join(f"{k}={kinds[k]}" for k in ("read", "write", "list", "mkdir"))
        note = f"{len(clients)} tenant owners (no admin key), {wall:.1f} s; {mix}"
        if server_cpu0 is not None and server_cpu1 is not None:
            note += f"; server CPU {(server_cpu1 - server_cpu0) / wall * 100:.0f}% of a core"
        if client_cpu0 is not None and client_cpu1 is not None:
            note += f", client CPU {(client_cpu1 - client_cpu0) / wall * 100:.0f}%"
        if errors:
            note += "; ERRORS " + " ".join(f"{k}={v}" for k, v in errors.items())
        return Result("", "mixed_8", samples, wall=wall, note=note)

    # -- streams -----------------------------------------------------------------------

    def disk_baseline(self, size: int) -> float | None:
        """MB/s of writing ``size`` bytes in 1 MiB blocks plus one fsync in the data
        directory: what the disk allows a durable upload (None if it is not known)."""
        if self.data_dir is None:
            return None
        block = os.urandom(MIB)
        fd, name = tempfile.mkstemp(dir=self.data_dir, prefix="disk-baseline-")
        try:
            start = time.perf_counter()
            with os.fdopen(fd, "wb") as handle:
                for _ in range(size // MIB):
                    handle.write(block)
                handle.flush()
                os.fsync(handle.fileno())
            return size / (time.perf_counter() - start) / MB
        finally:
            os.unlink(name)

    def op_upload(self, size: int) -> Result:
        disk = self.disk_baseline(size)
        run = next(self.runs)
        owner = self.tenants[0]
        client = self.connect(owner.api_key, timeout=600)
        path = f"{owner.root}/uploads/big{run}.bin"
        block = os.urandom(MIB)

        def chunks() -> Iterator[bytes]:
            for _ in range(size // MIB):
                yield block

        with RssSampler(self.server_pid) as rss:
            start = time.perf_counter()
            info = client.write(path, chunks())
            elapsed = time.perf_counter() - start
        client.close()
        if info.get("size") != size:
            raise AssertionError(f"upload stored {info.get('size')} bytes, not {size}")
        self.big_file, self.big_size = path, size
        result = self._stream_result("upload", size, elapsed, rss,
                                     "write(path, generator of 1 MiB chunks)")
        if disk is not None:
            result.note += f"; disk alone (write + fsync, same size): {disk:,.0f} MB/s"
        return result

    def op_download(self, size: int) -> Result:
        if self.big_file is None or self.big_size != size:
            self.op_upload(size)
        assert self.big_file is not None
        client = self.connect(self.tenants[0].api_key, timeout=600)
        with RssSampler(self.server_pid) as rss:
            start = time.perf_counter()
            total = 0
            for chunk in client.read_stream(self.big_file):
                total += len(chunk)
            elapsed = time.perf_counter() - start
        client.close()
        if total != size:
            raise AssertionError(f"download returned {total} bytes, not {size}")
        return self._stream_result("download", size, elapsed, rss, "read_stream(path)")

    def _stream_result(self, op: str, size: int, elapsed: float, rss: RssSampler,
                       how: str) -> Result:
        server = rss.server_growth_mb
        server_text = "n/a (no --server-pid)" if server is None else f"+{server:.1f} MB"
        note = (f"{size // MIB} MiB in {elapsed:.2f} s via {how}; peak RSS growth: "
                f"client +{rss.client_growth_mb:.1f} MB, server {server_text}")
        return Result("", op, [], wall=elapsed, note=note,
                      figures={"mb_per_s": size / elapsed / MB, "server_growth_mb": server,
                               "client_growth_mb": rss.client_growth_mb})


# -- running ---------------------------------------------------------------------------


def run_workload(backend: str, url: str, admin_key: str, server_pid: int | None,
                 plan: Plan, args: argparse.Namespace, data_dir: Path | None = None
                 ) -> tuple[list[Result], list[str]]:
    work = Workload(url, admin_key, server_pid, plan, data_dir=data_dir)
    results: list[Result] = []
    goals = targets(work.floors)
    ops: dict[str, Callable[[int], Result]] = {
        "floor_rt": lambda n: work.op_floor_rt(n),
        "floor_create": lambda n: work.op_floor_create(n),
        "floor_mixed8": lambda n: work.op_floor_mixed(float(n)),
        "health": lambda n: work.op_health(n),
        "onboard": lambda n: work.op_onboard(n),
        "write_1k": lambda n: work.op_write(n),
        "read_1k": lambda n: work.op_read(n),
        "denied_read": lambda n: work.op_denied(n),
        "list_1000": lambda n: work.op_list(n),
        "mixed_8": lambda n: work.op_mixed(float(n)),
        "upload": lambda n: work.op_upload(n),
        "download": lambda n: work.op_download(n),
    }
    stream = plan.stream_bytes if plan.scale == 1 else 128 * MIB
    sizes = {"floor_rt": plan.n(plan.read_n), "floor_create": plan.n(plan.write_n),
             "floor_mixed8": int(plan.mixed_s if plan.scale == 1 else 5),
             "health": plan.n(plan.read_n), "onboard": plan.n(plan.onboard_n),
             "write_1k": plan.n(plan.write_n), "read_1k": plan.n(plan.read_n),
             "denied_read": plan.n(plan.denied_n), "list_1000": plan.n(plan.list_n),
             "mixed_8": int(plan.mixed_s if plan.scale == 1 else 5),
             "upload": stream, "download": stream}

    def record(result: Result) -> Result:
        result.backend = backend
        result.target = goals.get(result.op)
        results.append(result)
        print(f"  {format_row(result)}", file=sys.stderr, flush=True)
        return result

    print(f"[{backend}] {url} ...", file=sys.stderr, flush=True)
    try:
        for op in ops:
            record(ops[op](sizes[op]))
        streams = [r for r in results if r.op in ("upload", "download")]
        growth = [r.figures["server_growth_mb"] for r in streams]
        peak = None if any(g is None for g in growth) else max(g for g in growth if g is not None)
        parts = ", ".join(f"{r.op} +{r.figures['server_growth_mb']:.1f} MB" for r in streams
                          if r.figures["server_growth_mb"] is not None)
        record(Result("", "server_rss", [], figures={"server_growth_mb": peak},
                      note=("peak server RSS growth: " + parts) if parts
                      else "needs the server's pid (--start or --server-pid)"))
        profiles = []
        if args.profile_misses:
            for r in [r for r in results if r.verdict == "MISS" and r.op in ops]:
                unit = {"upload": "bytes", "download": "bytes", "mixed_8": "seconds"}
                profiles.append(profile_op(f"{backend} {r.op}", ops[r.op],
                                           profile_size(r.op, sizes[r.op], plan), server_pid,
                                           unit.get(r.op, "iterations")))
    finally:
        work.close()
    return results, profiles


# -- profiling the server --------------------------------------------------------------


def profile_size(op: str, size: int, plan: Plan) -> int:
    """A smaller re-run for the profile: enough samples, not the whole run again."""
    if op in ("upload", "download"):
        return min(size, 256 * MIB)
    if op == "mixed_8":
        return min(size, 10)
    if op == "onboard":
        return min(size, 300)
    return min(size, max(50, 1000 // plan.scale))


def profile_op(label: str, fn: Callable[[int], Result], size: int,
               server_pid: int | None, unit: str = "iterations") -> str:
    """Re-run ``fn(size)`` with ``py-spy record`` attached to the server; its hottest
    functions (on-CPU samples of every server thread)."""
    if server_pid is None:
        return f"=== profile: {label}: needs the server's pid ==="
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return f"=== profile: {label}: py-spy not found (.venv/bin/pip install py-spy) ==="
    with tempfile.NamedTemporaryFile(prefix="nexus-pyspy-", suffix=".txt") as out:
        proc = subprocess.Popen([spy, "record", "--pid", str(server_pid), "--rate", "250",
                                 "--format", "raw", "--output", out.name, "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # let py-spy attach
        try:
            result = fn(size)
        except Exception as exc:  # noqa: BLE001 - a failed re-run must not lose the report
            return f"=== profile: {label}: the re-run failed: {exc!r} ==="
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        text = Path(out.name).read_text(errors="replace")
    print(f"  profiled {label}", file=sys.stderr, flush=True)
    if not text.strip():
        return (f"=== profile: {label}: py-spy recorded nothing "
                f"({err.decode(errors='replace').strip()[-300:]}) ===")
    return (f"=== profile: {label} (py-spy on the server pid {server_pid}, "
            f"250 Hz, samples of non-idle threads; re-run of {size:,} {unit}, "
            f"{result.iters} calls) ===\n"
            + summarize_collapsed(text))


#: Frames where a server thread waits (for work, for the event loop, for a socket):
#: hand-off costs between the event loop and the worker threads, not computation.
WAITS = {"EpollSelector.select", "Condition.wait", "Condition.notify",
         "BaseSelectorEventLoop._write_to_self", "BaseSelectorEventLoop._read_from_self"}


def summarize_collapsed(text: str, top: int = 15) -> str:
    """A py-spy ``raw`` (collapsed-stack) profile in three views: the share of the event
    loop thread and of the worker threads; the nexus functions with the most inclusive
    samples; and the functions with the most own samples, waits marked."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        names = [_frame_name(f) for f in frames]
        for name in {n for f, n in zip(frames, names, strict=True) if _is_nexus(f)}:
            inclusive[name] += count
        own[names[-1]] += count
        role = ("worker threads" if "WorkerThread.run" in stack else
                "event loop" if "run_forever" in stack else "other")
        threads[role] += count
    if total == 0:
        return "(no samples)"

    def pct(n: int) -> str:
        return f"{n / total * 100:5.1f}%"

    lines = [f"{total} samples: " + ", ".join(f"{role} {pct(n).strip()}"
                                              for role, n in threads.most_common())]
    lines.append("nexus functions, inclusive:")
    lines += [f"  {pct(n)}  {name}" for name, n in inclusive.most_common(top)]
    lines.append("own samples (wait = thread hand-off or idle wait, not computation):")
    for name, n in own.most_common(top):
        mark = "  [wait]" if name.split(" (")[0] in WAITS else ""
        lines.append(f"  {pct(n)}  {name}{mark}")
    return "\n".join(lines)


def _is_nexus(frame: str) -> bool:
    # py-spy names files relative to their sys.path entry: "nexus/service/files.py".
    location = frame.partition(" (")[2]
    in_nexus = location.startswith("nexus/") or "/nexus/" in location
    return in_nexus and "nexus/cli/" not in location  # not the server's main() chain


def _frame_name(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (to/file.py)"
    name, _, location = frame.partition(" (")
    location = location.rstrip(")").rsplit(":", 1)[0]
    parts = location.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else location
    return f"{name} ({short})" if location else name


# -- report ----------------------------------------------------------------------------

_HEADER = (f"{'backend':<10} {'op':<12} {'iters':>6} {'p50 ms':>8} {'p99 ms':>8} "
           f"{'ops/s':>8}  {'target':<16} {'measured':>12} {'':<4}  note")


def format_row(r: Result) -> str:
    if r.samples:
        numbers = f"{r.iters:>6} {r.p50_ms:>8.3f} {r.p99_ms:>8.3f} {r.ops_per_s:>8.1f}"
    else:
        numbers = f"{'-':>6} {'-':>8} {'-':>8} {'-':>8}"
    target = r.target.text if r.target else "-"
    return (f"{r.backend:<10} {r.op:<12} {numbers}  {target:<16} {r.measured:>12} "
            f"{r.verdict:<4}  {r.note}")


def source_state() -> str:
    """The commit the measured code is at, and how many files of src/ differ from it."""
    head = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "src")
    if head is None or status is None:
        return "?"
    dirty = status.splitlines()
    if not head:
        return "? (not a git checkout)"
    return f"git {head}" + (f" + {len(dirty)} uncommitted change(s) in src/" if dirty else "")


def machine_lines(tmp_dir: str | None, admin_url: str | None) -> list[str]:
    tmp = tmp_dir or tempfile.gettempdir()
    lines = [
        date_line(),
        machine_line(),
        f"python:    {python_version()}; "
        f"nexus {nexus.__version__} ({source_state()}); SQLite {sqlite3.sqlite_version}",
        f"uptime:    {uptime()}  (at start; other work skews the figures)",
        data_dir_line(tmp),
    ]
    if admin_url:
        lines.append(f"postgres:  {postgres_version(admin_url)}")
    return lines


def print_report(title: str, header: list[str], results: list[Result], profiles: list[str],
                 format_fn: Callable[[Result], str] = format_row, table_header: str = _HEADER,
                 official: str = "sqlite") -> None:
    print()
    print(title)
    for line in header:
        print(line)
    print()
    print(table_header)
    for r in results:
        print(format_fn(r))
    print()
    for group, rows in itertools.groupby(results, key=lambda r: r.backend):
        label = "targets" if group == official else "same figures (information)"
        print(f"{group}: {label}: "
              + tally((r.op, r.verdict) for r in rows if r.verdict in ("PASS", "MISS")))
    for text in profiles:
        print()
        print(text)


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("url", nargs="?", help="a running server, e.g. http://127.0.0.1:8080")
    parser.add_argument("admin_key", nargs="?", help="its system administrator's API key")
    parser.add_argument("--start", choices=["sqlite", "postgresql", "both"],
                        help="start a server over a temporary data directory instead")
    parser.add_argument("--server-pid", type=int,
                        help="with URL: the server's process id, for its RSS and profiles")
    parser.add_argument("--label", default="remote", help="backend column for URL mode")
    parser.add_argument("--quick", action="store_true",
                        help="10x fewer iterations, a 5 s mixed phase and 128 MiB streams")
    add_database_url_option(parser, "bench_server_", lead="--start postgresql: the server")
    parser.add_argument("--tmp-dir", default=None,
                        help="parent of the temporary data directory (default: $TMPDIR)")
    parser.add_argument("--server-log-level", default="info",
                        help="--start: the server's --log-level (default info, as deployed)")
    parser.add_argument("--profile-misses", action="store_true",
                        help="re-run each missed operation under py-spy attached to the "
                             "server and print its hottest functions")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the server is stopped and the temporary directory
    # and database are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if (args.start is None) == (args.url is None):
        parser.error("give either URL ADMIN_KEY or --start sqlite|postgresql|both")
    if args.url and not args.admin_key:
        parser.error("URL needs ADMIN_KEY")

    plan = Plan(scale=10 if args.quick else 1)
    backends = (["sqlite", "postgresql"] if args.start == "both" else [args.start]
                if args.start else [])
    header = machine_lines(args.tmp_dir, args.database_url if "postgresql" in backends
                           else None)
    results: list[Result] = []
    profiles: list[str] = []
    if args.start is None:
        header.append(f"server:    {args.url}" + (f" (pid {args.server_pid})"
                                                   if args.server_pid else ""))
        r, p = run_workload(args.label, args.url, args.admin_key, args.server_pid, plan, args)
        results += r
        profiles += p
    for backend in backends:
        with started_server(backend, args.database_url, args.tmp_dir,
                            args.server_log_level) as server:
            header.append(f"server:    {backend}: nexus serve --log-level "
                          f"{args.server_log_level} on {server.url} (pid {server.pid})")
            r, p = run_workload(backend, server.url, server.admin_key, server.pid, plan, args,
                                data_dir=server.data_dir)
            results += r
            profiles += p
    header.append(f"uptime:    {uptime()}  (at the end)")
    title = "nexus server benchmark (remote client over loopback HTTP)" + (
        " (--quick: 10x smaller, 128 MiB streams)" if args.quick else "")
    print_report(title, header, results, profiles,
                 official="sqlite" if args.start else args.label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
