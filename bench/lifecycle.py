"""Benchmark of the tenant lifecycle on the embedded engine: export, download, import and
delete of a 10,000-file / 1 GiB tenant, cross-tenant share checks and the audit log's cost.

Run from the repository root::

    .venv/bin/python bench/lifecycle.py                     # both backends, full size
    .venv/bin/python bench/lifecycle.py --backend sqlite --quick
    .venv/bin/python bench/lifecycle.py --profile export,import,delete

Each backend gets a fresh temporary data directory and, for PostgreSQL, a throw-away
database ``bench_lifecycle_<random>`` on ``--database-url``, dropped at the end. The
administrator is ``nexus.connect(config={"data_dir": ..., "database_url": ...})`` (the
local administrator); tenant users are clients over the same engine authenticated by API
keys (``LocalTransport(service, api_key=...)``), so admission, rate limits and permission
checks apply to them exactly as on a server.

Bulk steps (one line each, wall-clock seconds of one call):

``create``    setup, not part of any figure: ``acme`` (plan ``enterprise``) gets 10,000 files
              whose sizes (log-normal) sum to 1 GiB, written by 4 threads; random bytes
              (like compressed media: gzip cannot shrink them), or with ``--content text``
              JSON-lines text that gzip shrinks to about a sixth
``export``    ``export_tenant("acme")``: MB/s of file content, archive size, peak RSS growth
``download``  ``read_stream(<archive>)`` into a local temporary file: MB/s of the archive
``import``    ``import_tenant(<archive path>, tenant_id="copy")``: MB/s of file content
``delete``    ``delete_tenant("copy", confirm=True)``, and at the end ``delete_tenant("acme")``

Latencies (p50/p99 of single calls; tenant users' calls are paced below the enterprise
rate limit of 500 requests/s):

``share``     ``read()`` of a 1 KiB acme file by a beta user through ``create_share``, against
              acme's owner reading the same file and the beta user reading a 1 KiB beta
              file (interleaved; warm: check cache answers, cold: the revisions of both
              tenants are advanced before every round)
``audit``     1 KiB ``write()`` and ``read()`` by a tenant user with
              ``settings={"audit_reads": True}``, then again after
              ``update_tenant(..., settings={"audit_reads": False})``
``admin``     the administrator's 1 KiB write and read in the system partition, the
              operations of ``bench/engine.py``'s ``write_1k`` and ``read_1k``

``--quick`` uses 1,000 files / 64 MiB and 10x fewer latency iterations. On PostgreSQL the
database is ANALYZEd after ``create`` and after the delete of ``copy`` (``--no-analyze``:
never), as autovacuum would be within a minute.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

import nexus
from _common import (
    MB,
    RssSampler,
    Samples,
    add_backend_option,
    add_database_url_option,
    git,
    libpq_url,
    postgres_database,
    script_parser,
    tally,
    top_functions,
)
from engine import machine_lines
from nexus.client import LocalTransport

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

ACME, BETA, COPY, AUDITED = "acme", "beta", "copy", "audited"
FILES_PER_DIR = 100
FILL_THREADS = 4
#: Tenant users' calls start at most this often (the enterprise plan admits 500/s).
USER_RATE = 400.0
#: Streaming means memory does not grow with the tenant: export and import must stay
#: below this peak RSS growth while they move 1 GiB (this script's own figure; the issue
#: asks for the measurement, not a limit).
RSS_LIMIT_MB = 128
PROFILE_STEPS = ("export", "download", "import", "delete")


# -- results ---------------------------------------------------------------------------


@dataclass
class Bulk:
    """One long call: seconds, bytes moved, peak RSS growth."""

    backend: str
    step: str
    seconds: float
    files: int
    content_bytes: int
    #: Bytes the MB/s figure counts (the content, or the archive for the download).
    moved_bytes: int | None
    archive_bytes: int | None = None
    rss_growth: int | None = None
    note: str = ""
    rss_target: bool = False

    @property
    def mb_per_s(self) -> float | None:
        if self.moved_bytes is None or self.seconds <= 0:
            return None
        return self.moved_bytes / self.seconds / MB

    @property
    def target(self) -> str:
        return f"RSS <= +{RSS_LIMIT_MB} MB" if self.rss_target else "-"

    @property
    def verdict(self) -> str:
        if not self.rss_target or self.rss_growth is None:
            return ""
        return "PASS" if self.rss_growth / MB <= RSS_LIMIT_MB else "MISS"


@dataclass
class Latency(Samples):
    """Single calls timed one by one."""

    backend: str
    group: str
    op: str
    variant: str
    samples: list[float]
    note: str = ""



@dataclass
class Outcome:
    bulk: list[Bulk] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)


@dataclass
class Plan:
    files: int
    total_bytes: int
    warm_n: int
    cold_n: int
    audit_n: int
    admin_n: int
    quick: bool
    profile: tuple[str, ...]
    content: str = "random"
    seed: int = 1234


# -- measuring helpers -----------------------------------------------------------------


def paced(calls: Sequence[Callable[[int], Any]], n: int, *, rate: float | None = USER_RATE,
          before: Callable[[int], Any] | None = None) -> list[list[float]]:
    """Run ``n`` rounds of ``calls`` (each ``call(i)``), timing each call.

    The calls of a round alternate their order from round to round, so neither is
    always first after the (untimed) ``before(i)``. With ``rate``, no two calls start
    closer than ``1/rate`` s apart, which keeps a tenant user below its rate limit; the
    waiting is not timed.
    """
    samples: list[list[float]] = [[] for _ in calls]
    clock = time.perf_counter
    interval = 1.0 / rate if rate else 0.0
    next_start = clock()
    order = list(range(len(calls)))
    for i in range(n):
        if before is not None:
            before(i)
        for k in (order if i % 2 == 0 else order[::-1]):
            wait = next_start - clock()
            if wait > 0:
                time.sleep(wait)
            start = clock()
            calls[k](i)
            samples[k].append(clock() - start)
            next_start = start + interval
    return samples


@contextmanager
def timing_audit_record(service: Any) -> Iterator[list[float]]:
    """Time every ``AuditLog.record`` call (the in-transaction INSERT of an event and its
    chain hash) while the block runs. Instrumentation only: the call itself is unchanged."""
    log = service.audit
    original = log.record
    spent: list[float] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    log.record = record
    try:
        yield spent
    finally:
        del log.record


def profiled(label: str, fn: Callable[[], Any]) -> tuple[Any, str]:
    """Run ``fn`` under cProfile; the top 15 by cumulative and top 10 by own time."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    try:
        value = fn()
    finally:
        profiler.disable()
    elapsed = time.perf_counter() - start
    text = (f"=== profile: {label} ({elapsed:.2f} s under cProfile) ===\n"
            f"{top_functions(profiler, 'lifecycle.py')}")
    return value, text


# -- data ------------------------------------------------------------------------------


def file_sizes(count: int, total: int, rng: random.Random) -> list[int]:
    """``count`` log-normal sizes (sigma 1.5: median about a third of the mean, the
    largest some hundred times the median) that sum to exactly ``total``."""
    raw = [rng.lognormvariate(0.0, 1.5) for _ in range(count)]
    scale = total / sum(raw)
    sizes = [max(1, int(r * scale)) for r in raw]
    biggest = max(range(count), key=sizes.__getitem__)
    sizes[biggest] += total - sum(sizes)
    if sizes[biggest] < 1 or sum(sizes) != total:
        raise AssertionError("could not draw the file sizes")
    return sizes


def acme_path(i: int, count: int) -> str:
    directories = max(1, count // FILES_PER_DIR)
    return f"/tenants/{ACME}/data/d{i % directories:03d}/f{i:05d}.bin"


def text_corpus(rng: random.Random, size: int = 4 * MIB) -> bytes:
    """JSON lines like an application log: gzip -6 shrinks them to about a sixth."""
    lines = []
    total = 0
    i = 0
    while total < size:
        line = json.dumps({"seq": i, "user": f"user{rng.randrange(1000)}",
                           "action": rng.choice(["read", "write", "list", "delete"]),
                           "path": f"/projects/p{rng.randrange(100)}/doc{rng.randrange(10**5)}",
                           "bytes": rng.randrange(10**6), "ok": rng.random() < 0.95})
        lines.append(line)
        total += len(line) + 1
        i += 1
    return ("\n".join(lines) + "\n").encode()[:size]


def file_content(kind: str, i: int, size: int, seed: int, corpus: bytes) -> bytes:
    """The bytes of file ``i``: distinct for every file, so no two blobs dedupe."""
    rng = random.Random(seed * 1_000_003 + i)
    if kind == "random":
        return rng.randbytes(size)
    head = f"file {i}\n".encode()
    start = rng.randrange(len(corpus))
    body = (corpus[start:] + corpus) * (size // len(corpus) + 1)
    return (head + body)[:size]


def fill_tenant(admin: nexus.NexusClient, sizes: list[int], seed: int, kind: str) -> float:
    """Write the files of ``acme`` (content seeded per file) from a few threads sharing
    the administrator's client; returns the wall-clock seconds."""
    count = len(sizes)
    corpus = text_corpus(random.Random(seed)) if kind == "text" else b""
    for d in range(max(1, count // FILES_PER_DIR)):
        admin.mkdir(f"/tenants/{ACME}/data/d{d:03d}")
    lock = threading.Lock()
    next_index = iter(range(count))
    errors: list[BaseException] = []
    done = [0]
    start = time.perf_counter()

    def worker() -> None:
        try:
            while not errors:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                content = file_content(kind, i, sizes[i], seed, corpus)
                admin.write(acme_path(i, count), content)
                with lock:
                    done[0] += 1
                    if done[0] % max(1, count // 10) == 0:
                        print(f"    created {done[0]}/{count} files "
                              f"({time.perf_counter() - start:.0f} s)",
                              file=sys.stderr, flush=True)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(FILL_THREADS)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def last_audit_seq(admin: nexus.NexusClient, tenant: str) -> int:
    """The sequence number of the tenant's newest audit event (0 if none)."""
    last, cursor = 0, None
    while True:
        page = admin.audit_query(tenant, limit=10_000, cursor=cursor)
        if page["events"]:
            last = page["events"][-1]["seq"]
        cursor = page["next_cursor"]
        if cursor is None:
            return last


def user_client(service: Any, admin: nexus.NexusClient, tenant: str,
                user: str) -> nexus.NexusClient:
    """A client acting as ``user`` of ``tenant`` through a new API key, in this engine."""
    key = admin._call_rpc("admin_create_key", {"user_id": user, "name": f"bench {user}",
                                               "tenant_id": tenant})["api_key"]
    return nexus.connect(transport=LocalTransport(service, api_key=key, owns_service=False))


# -- backends --------------------------------------------------------------------------


@contextmanager
def backend_client(backend: str, admin_url: str,
                   data_dir: str) -> Iterator[tuple[nexus.NexusClient, str | None]]:
    """The administrator's client, and the PostgreSQL database's URL (None for SQLite)."""
    if backend == "sqlite":
        with nexus.connect(config={"data_dir": data_dir}) as client:
            yield client, None
        return
    with postgres_database(admin_url, "bench_lifecycle_") as url:
        with nexus.connect(config={"data_dir": data_dir, "database_url": url}) as client:
            yield client, url


def postgres_setting(admin_url: str, name: str) -> str:
    import psycopg

    try:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s",
                               (name,)).fetchone()
    except Exception as exc:  # noqa: BLE001
        return f"? ({type(exc).__name__})"
    return row[0] if row else "?"


# -- the run ---------------------------------------------------------------------------


class Run:
    """Everything one backend does, in order."""

    def __init__(self, backend: str, admin: nexus.NexusClient, plan: Plan,
                 scratch: str, analyze_url: str | None = None) -> None:
        self.backend = backend
        self.admin = admin
        self.analyze_url = analyze_url
        # The embedded engine behind the admin client, shared with the users' clients.
        self.service = admin._transport.service  # type: ignore[attr-defined]
        self.plan = plan
        self.scratch = scratch
        self.out = Outcome()
        self.rng = random.Random(plan.seed)
        self.archive: dict[str, Any] = {}
        self.alice: nexus.NexusClient | None = None  # acme's owner, from create()

    def analyze(self) -> None:
        """PostgreSQL: ``ANALYZE`` the throw-away database, as autovacuum would within a
        minute of a bulk load. Besides the statistics, it invalidates the plans that the
        pooled connections prepared while the tables were nearly empty."""
        if self.analyze_url is None:
            return
        import psycopg

        with psycopg.connect(self.analyze_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        self.log("ANALYZE")

    def log(self, text: str) -> None:
        print(f"  [{self.backend}] {text}", file=sys.stderr, flush=True)

    def bulk(self, result: Bulk) -> None:
        result.backend = self.backend
        self.out.bulk.append(result)
        self.log(format_bulk(result))

    def latency(self, result: Latency) -> None:
        result.backend = self.backend
        self.out.latency.append(result)
        self.log(format_latency(result))

    # -- bulk steps --------------------------------------------------------------------

    def create(self) -> None:
        plan = self.plan
        self.admin.create_tenant(ACME, name="Acme (bench)", plan="enterprise")
        # A user with a key and an owner grant, so the archive carries both kinds.
        self.admin.rebac_create(("user", "alice"), "owner", ("file", f"/tenants/{ACME}"))
        self.alice = user_client(self.service, self.admin, ACME, "alice")
        sizes = file_sizes(plan.files, plan.total_bytes, self.rng)
        seconds = fill_tenant(self.admin, sizes, plan.seed, plan.content)
        usage = self.admin.get_tenant(ACME)["usage"]
        if (usage["files"], usage["storage_bytes"]) != (plan.files, plan.total_bytes):
            raise AssertionError(f"acme holds {usage['files']} files / "
                                 f"{usage['storage_bytes']} bytes, not {plan.files} / "
                                 f"{plan.total_bytes}")
        ordered = sorted(sizes)
        self.bulk(Bulk("", "create", seconds, plan.files, plan.total_bytes, plan.total_bytes,
                       note=f"setup (not a figure): {FILL_THREADS} threads, admin write(), "
                            f"{plan.content} content in "
                            f"{max(1, plan.files // FILES_PER_DIR)} dirs; "
                            f"sizes median {ordered[len(ordered) // 2] / KIB:.0f} KiB, "
                            f"max {ordered[-1] / MIB:.1f} MiB"))

    def export(self) -> None:
        with RssSampler() as rss:
            start = time.perf_counter()
            info = self.admin.export_tenant(ACME)
            seconds = time.perf_counter() - start
        if (info["files"], info["bytes"]) != (self.plan.files, self.plan.total_bytes):
            raise AssertionError(f"export has {info['files']} files / {info['bytes']} bytes")
        self.archive = info
        self.bulk(Bulk("", "export", seconds, info["files"], info["bytes"], info["bytes"],
                       archive_bytes=info["archive_bytes"], rss_growth=rss.client_growth,
                       rss_target=True,
                       note=f"-> {info['path']} (archive/content "
                            f"{info['archive_bytes'] / info['bytes']:.3f}); "
                            f"{info['audit_events']} audit events, {info['tuples']} tuples"))

    def download(self) -> None:
        path, size = self.archive["path"], self.archive["archive_bytes"]
        fd, local = tempfile.mkstemp(dir=self.scratch, prefix="download-", suffix=".tar.gz")
        try:
            with RssSampler() as rss, os.fdopen(fd, "wb") as out:
                start = time.perf_counter()
                received = 0
                for chunk in self.admin.read_stream(path):
                    out.write(chunk)
                    received += len(chunk)
                out.flush()
                seconds = time.perf_counter() - start
            if received != size:
                raise AssertionError(f"downloaded {received} bytes, not {size}")
            digest = hashlib.sha256()
            with open(local, "rb") as handle:
                while block := handle.read(MIB):
                    digest.update(block)
            if digest.hexdigest() != self.archive["archive_sha256"]:
                raise AssertionError("the downloaded archive does not match its SHA-256")
        finally:
            os.unlink(local)
        self.bulk(Bulk("", "download", seconds, self.plan.files, self.plan.total_bytes, size,
                       archive_bytes=size, rss_growth=rss.client_growth,
                       note="MB/s of the archive; read_stream() into a local file (no "
                            "fsync), SHA-256 checked afterwards"))

    def import_copy(self, tenant: str = COPY) -> dict[str, Any]:
        with RssSampler() as rss:
            start = time.perf_counter()
            result = self.admin.import_tenant(self.archive["path"], tenant_id=tenant)
            seconds = time.perf_counter() - start
        self.check_copy(tenant, result)
        self.bulk(Bulk("", "import", seconds, result["files"], self.plan.total_bytes,
                       self.plan.total_bytes, archive_bytes=self.archive["archive_bytes"],
                       rss_growth=rss.client_growth, rss_target=True,
                       note=f"import_tenant({self.archive['path']!r}, tenant_id={tenant!r}); "
                            f"{result['users']} users, {result['tuples']} tuples; "
                            "usage and 20 files' SHA-256 checked afterwards"))
        return result

    def check_copy(self, tenant: str, result: dict[str, Any]) -> None:
        usage = self.admin.get_tenant(tenant)["usage"]
        expected = (self.plan.files, self.plan.files, self.plan.total_bytes)
        if (result["files"], usage["files"], usage["storage_bytes"]) != expected:
            raise AssertionError(f"{tenant} has {usage['files']} files / "
                                 f"{usage['storage_bytes']} bytes after import")
        for i in random.Random(7).sample(range(self.plan.files), min(20, self.plan.files)):
            original = self.admin.stat(acme_path(i, self.plan.files))
            copied = self.admin.stat(acme_path(i, self.plan.files)
                                     .replace(f"/tenants/{ACME}/", f"/tenants/{tenant}/", 1))
            if (original["size"], original["etag"]) != (copied["size"], copied["etag"]):
                raise AssertionError(f"file {i} differs after import")

    def delete(self, tenant: str, note: str) -> None:
        usage = self.admin.get_tenant(tenant)["usage"]
        start = time.perf_counter()
        result = self.admin.delete_tenant(tenant, confirm=True)
        seconds = time.perf_counter() - start
        try:
            self.admin.get_tenant(tenant)
        except nexus.NexusFileNotFoundError:
            pass
        else:
            raise AssertionError(f"{tenant} still exists after delete_tenant")
        self.bulk(Bulk("", "delete", seconds, usage["files"], usage["storage_bytes"], None,
                       note=f"delete_tenant({tenant!r}, confirm=True): {note}; "
                            f"{usage['files'] / seconds:,.0f} files/s, "
                            f"{result['grants']} grants"))

    # -- latencies ---------------------------------------------------------------------

    def shares(self) -> None:
        admin, n = self.admin, self.plan
        admin.create_tenant(BETA, name="Beta (bench)", plan="enterprise")
        admin.rebac_create(("user", "bob"), "owner", ("file", f"/tenants/{BETA}"))
        # Read auditing off in both tenants, so the comparison is the permission check
        # and not an audit commit (measured separately below).
        for tenant in (ACME, BETA):
            admin.update_tenant(tenant, settings={"audit_reads": False})
        alice = self.alice
        assert alice is not None, "create() makes acme's owner"
        bob = user_client(self.service, admin, BETA, "bob")
        shared, own = f"/tenants/{ACME}/shared/share-1k.bin", f"/tenants/{BETA}/own-1k.bin"
        payload = self.rng.randbytes(KIB)
        admin.write(shared, payload)
        admin.write(own, payload)
        try:
            bob.read(shared)
        except nexus.NexusPermissionError:
            pass
        else:
            raise AssertionError("beta read acme's file before the share")
        share = alice.create_share(shared, BETA, permission="can_read")
        if bob.read(shared) != payload or bob.read(own) != payload \
                or alice.read(shared) != payload:
            raise AssertionError("a read returned the wrong bytes")
        # bob through the share; alice, acme's owner, reading the same file (same row,
        # same tenant size: only the check differs); bob's own 1 KiB file in beta.
        calls = [lambda _i: bob.read(shared), lambda _i: alice.read(shared),
                 lambda _i: bob.read(own)]
        what = [("shared", f"beta user bob reads the acme file via share "
                           f"{share['share_id'][:14]}…"),
                ("same file", "acme's owner alice reads that file (own tenant)"),
                ("own", "bob reads a 1 KiB file in beta (own tenant)")]
        paced(calls, 20)
        warm = paced(calls, n.warm_n)
        for (variant, text), samples in zip(what, warm, strict=True):
            self.latency(Latency("", "share", "read_1k", f"{variant} warm", samples,
                                 note=f"{text}; check cache hit"))
        revisions: dict[str, set[str]] = {ACME: set(), BETA: set()}

        def bump(_i: int) -> None:
            # Re-granting an existing tuple advances the tenant's revision, which is part
            # of every check-cache key: the next check in either tenant is computed.
            for tenant in (ACME, BETA):
                admin.rebac_create(("user", "bump"), "viewer",
                                   ("file", f"/tenants/{tenant}/uploads"))
                revisions[tenant].add(admin.rebac_revision(tenant_id=tenant))

        cold = paced(calls, n.cold_n, before=bump)
        if any(len(r) != n.cold_n for r in revisions.values()):
            raise AssertionError("a revision did not advance before every cold round")
        for (variant, text), samples in zip(what, cold, strict=True):
            self.latency(Latency("", "share", "read_1k", f"{variant} cold", samples,
                                 note=f"{text}; revisions advanced before each round"))
        w = [statistics.median(s) * 1000 for s in warm]
        c = [statistics.median(s) * 1000 for s in cold]
        self.out.findings.append(
            f"{self.backend}: share check: p50 shared - same file read by its owner = "
            f"{w[0] - w[1]:+.3f} ms warm, {c[0] - c[1]:+.3f} ms cold; shared - bob's own "
            f"beta file = {w[0] - w[2]:+.3f} ms warm, {c[0] - c[2]:+.3f} ms cold")
        for client in (alice, bob):
            client.close()

    def audit(self) -> None:
        admin, n = self.admin, self.plan.audit_n
        admin.create_tenant(AUDITED, name="Audited (bench)", plan="enterprise",
                            settings={"audit_reads": True})
        admin.rebac_create(("user", "carol"), "owner", ("file", f"/tenants/{AUDITED}"))
        carol = user_client(self.service, admin, AUDITED, "carol")
        medians: dict[tuple[str, bool], float] = {}
        for reads_on in (True, False):
            label = "on" if reads_on else "off"
            if not reads_on:
                admin.update_tenant(AUDITED, settings={"audit_reads": False})
            root = f"/tenants/{AUDITED}/audit-{label}"
            for d in range(4):
                carol.mkdir(f"{root}/d{d}")
            payloads = [self.rng.randbytes(KIB) for _ in range(n)]
            files = [f"{root}/d{i % 4}/f{i:05d}.bin" for i in range(n)]
            for i in range(20):  # warm-up: connections, shard directories, caches
                carol.write(f"{root}/warm{i}", payloads[i])
                carol.read(f"{root}/warm{i}")
            before = last_audit_seq(admin, AUDITED)
            with timing_audit_record(self.service) as spent:
                (writes,) = paced([lambda i, f=files, p=payloads: carol.write(f[i], p[i])], n)
            written = last_audit_seq(admin, AUDITED) - before
            in_audit = statistics.median(spent) * 1000
            # Untimed: read every file once, so the timed reads find their permission
            # answers cached, as repeated reads do (the audit is what differs).
            paced([lambda i, f=files: carol.read(f[i])], n)
            order = [self.rng.choice(files) for _ in range(n)]
            before = last_audit_seq(admin, AUDITED)
            (reads,) = paced([lambda i, o=order: carol.read(o[i])], n)
            read_events = last_audit_seq(admin, AUDITED) - before
            if written != n or read_events != (n if reads_on else 0):
                raise AssertionError(f"audit_reads={label}: {written} events for {n} writes, "
                                     f"{read_events} for {n} reads")
            self.latency(Latency("", "audit", "write_1k", f"audit_reads={label}", writes,
                                 note=f"always audited ({written} events); AuditLog.record "
                                      f"in the write's transaction: p50 {in_audit:.3f} ms"))
            recorded = "one per read, own transaction" if reads_on else "reads not recorded"
            self.latency(Latency("", "audit", "read_1k", f"audit_reads={label}", reads,
                                 note=f"{read_events} events ({recorded}); permission "
                                      "answers cached"))
            medians[("write", reads_on)] = statistics.median(writes) * 1000
            medians[("read", reads_on)] = statistics.median(reads) * 1000
            medians[("record", reads_on)] = in_audit
        on, off = medians[("read", True)], medians[("read", False)]
        record = min(medians[("record", True)], medians[("record", False)])
        write = medians[("write", False)]
        self.out.findings.append(
            f"{self.backend}: audit per read: p50 {on:.3f} ms on vs {off:.3f} ms off = "
            f"{on - off:+.3f} ms ({(on - off) / off * 100:+.0f} %); per write (cannot be "
            f"switched off): AuditLog.record p50 {record:.3f} ms of a {write:.3f} ms write "
            f"({record / write * 100:.0f} %)")
        carol.close()

    def admin_ops(self) -> None:
        admin, n = self.admin, self.plan.admin_n
        for d in range(4):
            admin.mkdir(f"/bench/write/d{d}")
        payloads = [self.rng.randbytes(KIB) for _ in range(n)]
        files = [f"/bench/write/d{i % 4}/f{i:06d}.bin" for i in range(n)]
        for i in range(20):
            admin.write(f"/bench/write/warm{i}", payloads[i])
            admin.read(f"/bench/write/warm{i}")
        system = "_system"
        before = last_audit_seq(admin, system)
        (writes,) = paced([lambda i: admin.write(files[i], payloads[i])], n, rate=None)
        written = last_audit_seq(admin, system) - before
        order = [self.rng.choice(files) for _ in range(n)]
        (reads,) = paced([lambda i: admin.read(order[i])], n, rate=None)
        read_events = last_audit_seq(admin, system) - before - written
        self.latency(Latency("", "admin", "write_1k", "system partition", writes,
                             note=f"engine.py's write_1k, unpaced; {written} events in the "
                                  "_system audit log"))
        self.latency(Latency("", "admin", "read_1k", "system partition", reads,
                             note=f"engine.py's read_1k, unpaced; {read_events} events in the "
                                  "_system audit log"))

    # -- profiles ----------------------------------------------------------------------

    def profiles(self) -> None:
        steps = self.plan.profile
        if not steps:
            return
        spare = "copy2"
        if "export" in steps:
            _, text = profiled(f"{self.backend} export", lambda: self.admin.export_tenant(
                ACME, path="/exports/profile-acme.tar.gz"))
            self.out.profiles.append(text)
        if "download" in steps:
            def drain() -> int:
                return sum(len(c) for c in self.admin.read_stream(self.archive["path"]))
            _, text = profiled(f"{self.backend} download", drain)
            self.out.profiles.append(text)
        if "import" in steps:
            _, text = profiled(f"{self.backend} import", lambda: self.admin.import_tenant(
                self.archive["path"], tenant_id=spare))
            self.out.profiles.append(text)
        elif "delete" in steps:
            self.admin.import_tenant(self.archive["path"], tenant_id=spare)
        if "delete" in steps:
            _, text = profiled(f"{self.backend} delete", lambda: self.admin.delete_tenant(
                spare, confirm=True))
            self.out.profiles.append(text)
        elif "import" in steps:
            self.admin.delete_tenant(spare, confirm=True)
        self.log(f"profiled {', '.join(steps)}")


def run_backend(backend: str, plan: Plan, args: argparse.Namespace) -> Outcome:
    data_dir = tempfile.mkdtemp(prefix=f"nexus-bench-lifecycle-{backend}-", dir=args.tmp_dir)
    scratch = tempfile.mkdtemp(prefix="nexus-bench-lifecycle-scratch-", dir=args.tmp_dir)
    print(f"[{backend}] running in {data_dir} ...", file=sys.stderr, flush=True)
    try:
        with backend_client(backend, args.database_url, data_dir) as (admin, url):
            run = Run(backend, admin, plan, scratch,
                      analyze_url=None if args.no_analyze else url)
            run.create()
            run.analyze()
            run.export()
            run.download()
            run.import_copy()
            run.delete(COPY, "the imported copy, right after the import")
            run.analyze()
            run.shares()
            run.audit()
            run.admin_ops()
            run.profiles()
            run.delete(ACME, "the original, now also with an outgoing share")
            return run.out
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


# -- report ----------------------------------------------------------------------------

_BULK_HEADER = (f"{'backend':<10} {'step':<9} {'files':>6} {'content MB':>10} "
                f"{'seconds':>8} {'MB/s':>7} {'archive MB':>10} {'RSS +MB':>8}  "
                f"{'target':<15} {'':<4}  note")
_LATENCY_HEADER = (f"{'backend':<10} {'group':<6} {'op':<9} {'variant':<17} {'iters':>6} "
                   f"{'p50 ms':>8} {'p99 ms':>8} {'ops/s':>8}  note")


def format_bulk(r: Bulk) -> str:
    def opt(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    return (f"{r.backend:<10} {r.step:<9} {r.files:>6} {r.content_bytes / MB:>10.1f} "
            f"{r.seconds:>8.2f} {opt(r.mb_per_s, '.1f'):>7} "
            f"{opt(None if r.archive_bytes is None else r.archive_bytes / MB, '.1f'):>10} "
            f"{opt(None if r.rss_growth is None else r.rss_growth / MB, '.1f'):>8}  "
            f"{r.target:<15} {r.verdict:<4}  {r.note}")


def format_latency(r: Latency) -> str:
    return (f"{r.backend:<10} {r.group:<6} {r.op:<9} {r.variant:<17} {len(r.samples):>6} "
            f"{r.p50_ms:>8.3f} {r.p99_ms:>8.3f} {r.ops_per_s:>8.1f}  {r.note}")


def code_version() -> str:
    """The commit of the checkout and whether ``src/`` has uncommitted changes."""
    head = git("log", "-1", "--format=%h %cd", "--date=format:%Y-%m-%d %H:%M")
    dirty = git("status", "--porcelain", "--", "src")
    if not head or dirty is None:
        return "?"
    return f"{head}" + (" + uncommitted changes in src/" if dirty else "")


def other_bench_processes() -> str:
    """Other processes running a ``bench/`` script (they skew every figure)."""
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if proc.info["pid"] != me and "bench/" in cmdline:
            found.append(f"{proc.info['pid']} ({cmdline[:60]})")
    return ", ".join(found) if found else "none"


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_database_url_option(parser, "bench_lifecycle_")
    add_backend_option(parser)
    parser.add_argument("--quick", action="store_true",
                        help="1,000 files / 64 MiB and 10x fewer latency iterations")
    parser.add_argument("--files", type=int, default=None,
                        help="files in the exported tenant (default 10,000; 1,000 --quick)")
    parser.add_argument("--total-mib", type=int, default=None,
                        help="their total size in MiB (default 1024; 64 with --quick)")
    parser.add_argument("--content", choices=["random", "text"], default="random",
                        help="file content: random bytes (default; incompressible) or "
                             "JSON-lines text (gzip shrinks it to about a sixth)")
    parser.add_argument("--tmp-dir", default=None,
                        help="parent of the temporary data directories (default: $TMPDIR); "
                             "needs about 5x the tenant's size free")
    parser.add_argument("--profile", default="",
                        help="comma-separated steps to re-run under cProfile after the "
                             f"measurements: {','.join(PROFILE_STEPS)}")
    parser.add_argument("--no-analyze", action="store_true",
                        help="PostgreSQL: do not ANALYZE after the bulk loads (what "
                             "autovacuum does within a minute, unless it is off)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    steps = tuple(s for s in args.profile.split(",") if s)
    unknown = set(steps) - set(PROFILE_STEPS)
    if unknown:
        parser.error(f"unknown --profile steps {sorted(unknown)}; choose from {PROFILE_STEPS}")
    scale = 10 if args.quick else 1
    files = args.files or (1_000 if args.quick else 10_000)
    total = (args.total_mib or (64 if args.quick else 1024)) * MIB
    plan = Plan(files=files, total_bytes=total, warm_n=2000 // scale, cold_n=500 // scale,
                audit_n=2000 // scale, admin_n=2000 // scale, quick=args.quick,
                profile=steps, content=args.content)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    header = machine_lines(args, backends)
    if "postgresql" in backends:
        header.append(f"postgres:  autovacuum={postgres_setting(args.database_url, 'autovacuum')}; "
                      + ("no ANALYZE (--no-analyze)" if args.no_analyze else
                         "this script runs ANALYZE after create and after the delete of copy"))
    header.append(f"code:      {code_version()}")
    header.append(f"others:    bench/ processes running at start: {other_bench_processes()}")
    header.append(f"tenant:    {files:,} files, {total / MIB:,.0f} MiB of {args.content} content; "
                  f"latency loops {plan.warm_n} warm / {plan.cold_n} cold / {plan.audit_n} "
                  f"audit / {plan.admin_n} admin iterations")

    outcomes = [run_backend(backend, plan, args) for backend in backends]

    print()
    print("nexus tenant lifecycle benchmark"
          + (" (--quick: 1,000 files / 64 MiB, 10x fewer iterations)" if args.quick else ""))
    for line in header:
        print(line)
    print()
    print(_BULK_HEADER)
    for outcome in outcomes:
        for b in outcome.bulk:
            print(format_bulk(b))
    print()
    print(_LATENCY_HEADER)
    for outcome in outcomes:
        for lat in outcome.latency:
            print(format_latency(lat))
    print()
    for outcome in outcomes:
        for line in outcome.findings:
            print(line)
    print("targets: " + tally((f"{b.backend} {b.step}", b.verdict)
                              for o in outcomes for b in o.bulk if b.verdict))
    for outcome in outcomes:
        for text in outcome.profiles:
            print()
            print(text)

    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": header, "quick": args.quick,
                       "bulk": [{"backend": b.backend, "step": b.step, "files": b.files,
                                 "content_bytes": b.content_bytes, "seconds": b.seconds,
                                 "mb_per_s": b.mb_per_s, "archive_bytes": b.archive_bytes,
                                 "rss_growth_bytes": b.rss_growth, "verdict": b.verdict or None,
                                 "note": b.note} for o in outcomes for b in o.bulk],
                       "latency": [{"backend": r.backend, "group": r.group, "op": r.op,
                                    "variant": r.variant, "iters": len(r.samples),
                                    "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                                    "ops_per_s": r.ops_per_s, "note": r.note}
                                   for o in outcomes for r in o.latency],
                       "findings": [f for o in outcomes for f in o.findings]}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
