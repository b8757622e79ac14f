"""Throughput as the server scales out: 8 and 32 clients running mixed operations against
one worker, two workers (``--workers 2``) and two replicas (two ``nexus serve`` over one
PostgreSQL database), on SQLite and PostgreSQL — against the floor of the same machine in
the same run: a bare ASGI app on uvicorn with the same worker count, answering ``GET``
to the same clients.

Run from the repository root::

    .venv/bin/python bench/scale_out.py                 # both backends, 10 s per cell
    .venv/bin/python bench/scale_out.py --quick         # 3 s per cell
    .venv/bin/python bench/scale_out.py --backend sqlite --seconds 20

Every client is a thread with its own ``nexus.connect`` client and its own tenant
(``enterprise``: no rate limit is reached), cycling read 1 KiB / write 1 KiB / list of
20 / read / exists; the threads run in two client processes so that the client's own
interpreter is not the bottleneck (it still shares the machine's cores with the server,
as the floor's clients do). "2 replicas" is PostgreSQL only: two replicas on one SQLite
file are what ``--workers 2`` is. Figures: operations per second over the wall clock,
p50/p99 latency, and the ratio to the bare app with the same worker count.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

import nexus
from _common import (
    DEFAULT_ADMIN_URL,
    add_backend_option,
    add_database_url_option,
    bare_app,
    machine_line,
    percentile,
    postgres_database,
    script_parser,
)
from nexus._serve import ServeProcess

KIB = 1024
CLIENTS = (8, 32)
#: A client's repeating cycle of operations.
CYCLE = ("read", "write", "list", "read", "exists")


@dataclass(frozen=True)
class Seat:
    """What one client thread needs: a server URL, its tenant's owner key and root."""

    url: str
    key: str
    root: str


def client_process(seats: list[Seat], seconds: float, bare: bool,
                   out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Run one thread per seat for ``seconds``; put (latencies, errors) on ``out``."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    barrier = threading.Barrier(len(seats))

    def run(seat: Seat, index: int) -> None:
        nonlocal errors
        mine: list[float] = []
        failed = 0
        if bare:
            http = httpx.Client(base_url=seat.url, timeout=60)
            http.get("/")
            barrier.wait()
            deadline = time.perf_counter() + seconds
            while (begin := time.perf_counter()) < deadline:
                if http.get("/").status_code != 200:
                    failed += 1
                mine.append(time.perf_counter() - begin)
            http.close()
        else:
            client = nexus.connect(config={"url": seat.url, "api_key": seat.key,
                                           "timeout": 60})
            payload = b"w" * KIB
            client.read(f"{seat.root}/r/f0")
            barrier.wait()
            deadline = time.perf_counter() + seconds
            i = 0
            while (begin := time.perf_counter()) < deadline:
                kind = CYCLE[i % len(CYCLE)]
                try:
                    if kind == "read":
                        client.read(f"{seat.root}/r/f{i % 20}")
                    elif kind == "write":
                        client.write(f"{seat.root}/w/{index}-{i}", payload)
                    elif kind == "list":
                        client.list(f"{seat.root}/r")
                    else:
                        client.exists(f"{seat.root}/r/f{i % 20}")
                except nexus.NexusError:
                    failed += 1
                mine.append(time.perf_counter() - begin)
                i += 1
            client.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=run, args=(seat, i)) for i, seat in enumerate(seats)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((latencies, errors))


def load(seats: list[Seat], seconds: float, *,
         bare: bool = False) -> tuple[str, float, float]:
    """Run ``seats`` split over two client processes; the result row's figures."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    halves = [seats[0::2], seats[1::2]]
    started = time.perf_counter()
    procs = [context.Process(target=client_process, args=(half, seconds, bare, out))
             for half in halves]
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    wall = max(time.perf_counter() - started - 1.0, seconds)  # spawn start-up, roughly
    samples = [x for lat, _ in results for x in lat]
    errors = sum(e for _, e in results)
    rate = len(samples) / seconds
    return (f"{rate:8.0f} ops/s  p50 {statistics.median(samples) * 1000:6.2f} ms  "
            f"p99 {percentile(samples, 99) * 1000:7.2f} ms"
            + (f"  ERRORS {errors}" if errors else "")), rate, wall


@contextmanager
def nexus_servers(root: Path, database_url: str | None, *, workers: int,
                  replicas: int) -> Iterator[list[ServeProcess]]:
    secret = "bench-scale-out-secret-" + "x" * 20
    with ExitStack() as stack:
        servers: list[ServeProcess] = []
        for n in range(replicas):
            server = ServeProcess(
                root / f"r{n}" / "data", database_url, log_path=root / f"r{n}.log",
                extra_args=("--log-level", "warning", "--workers", str(workers)),
                env={"NEXUS_SECRET": secret, "NEXUS_BLOB_URL": f"file://{root}/blobs"},
                startup_seconds=90)
            servers.append(stack.enter_context(server.start()))
        yield servers


def seat_tenants(servers: list[ServeProcess], count: int, tag: str) -> list[Seat]:
    """``count`` enterprise tenants, each with an owner key, 20 files of 1 KiB in ``r/``
    and a ``w/`` folder; the seats round-robin over the servers."""
    seats = []
    with nexus.connect(config={"url": servers[0].url, "api_key": servers[0].admin_key,
                               "timeout": 60}) as admin:
        for n in range(count):
            tenant = f"{tag}{n:03d}"
            admin.create_tenant(tenant, plan="enterprise")
            key = admin._call_rpc("admin_create_key", {  # noqa: SLF001 - the guide's call
                "user_id": "owner", "name": "owner", "tenant_id": tenant})["api_key"]
            admin.rebac_create(("user", "owner"), "owner", ("file", f"/tenants/{tenant}"),
                               tenant_id=tenant)
            root = f"/tenants/{tenant}/shared"
            for i in range(20):
                admin.write(f"{root}/r/f{i}", b"r" * KIB)
            admin.mkdir(f"{root}/w")
            seats.append(Seat(servers[n % len(servers)].url, key, root))
    return seats


def main() -> int:
    parser = script_parser(__doc__)
    add_backend_option(parser)
    add_database_url_option(parser, "bench_scale_")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="3 s per cell")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(f"scale-out: mixed operations ({'/'.join(CYCLE)}), {seconds:g} s per cell")
    print(machine_line())
    floors: dict[tuple[int, int], float] = {}
    for workers in (1, 2):
        with bare_app(workers) as url:
            for clients in CLIENTS:
                row, rate, _ = load([Seat(url, "", "")] * clients, seconds, bare=True)
                floors[(workers, clients)] = rate
                print(f"  floor: bare ASGI app, {workers} worker(s), {clients:2d} clients "
                      f"{row}")
    for backend in backends:
        topologies = [(1, 1), (2, 1)] + ([(1, 2)] if backend == "postgresql" else [])
        for workers, replicas in topologies:
            name = f"{replicas} replicas" if replicas > 1 else f"{workers} worker(s)"
            root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
            try:
                with ExitStack() as stack:
                    url = (stack.enter_context(postgres_database(
                        args.database_url or DEFAULT_ADMIN_URL, "bench_scale_"))
                        if backend == "postgresql" else None)
                    servers = stack.enter_context(
                        nexus_servers(root, url, workers=workers, replicas=replicas))
                    seats = seat_tenants(servers, max(CLIENTS), "s")
                    for clients in CLIENTS:
                        row, rate, _ = load(seats[:clients], seconds)
                        floor = floors[(max(workers, replicas), clients)]
                        print(f"  {backend:<10} {name:<12} {clients:2d} clients {row}  "
                              f"{rate / floor:4.2f}x bare app")
            finally:
                shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
