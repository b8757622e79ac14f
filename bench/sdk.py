"""The SDK over HTTP: the async client against the sync one at 8 and 64 concurrent calls,
and ``write_many`` of 5,000 small files against writing them one by one.

Usage: python bench/sdk.py [--backend sqlite|postgresql|both] [--quick]

Each figure is printed with the floor of the same machine in the same run:

``floor_async_N``  N concurrent GETs of a bare ASGI app on uvicorn (``_bare_app.py``)
                   from one event loop through ``httpx.AsyncClient``: the most any HTTP
                   client on this machine gets from one server process.
``async_N``        N concurrent ``stat`` calls (one JSON-RPC round trip each) from one
                   event loop through ``nexus.connect_async``; client threads at the peak.
``sync_N``         the same calls from N threads, each with its own ``nexus.connect``.
                   (Calls, not downloads: a server holds at most 32 downloads open, so 64
                   concurrent downloads measure its 429s.)
``floor_create``   5,000 durable 1-byte creates (write, fsync, rename, directory fsync).
``write_many``     5,000 one-byte files in 5 ``write_many`` calls of 1,000.
``one_by_one``     ``write`` of one-byte files, one call each (500 measured, shown ×10).

Calls are spread over 8 tenants (enterprise plan) so that no tenant's rate limit is
what is measured. One server process (``--workers 1``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

import nexus
from _common import (
    ServerProcess,
    add_backend_option,
    add_database_url_option,
    bare_app,
    date_line,
    durable_create_samples,
    machine_line,
    python_version,
    script_parser,
    throwaway_store,
)

TENANTS = 8
KIB = 1024
CONCURRENCY = (8, 64)


def _setup(server: ServerProcess) -> list[str]:
    """Eight tenants with an owner key each and a 1 KiB file to read."""
    admin = nexus.connect(config={"url": server.url, "api_key": server.admin_key})
    keys = []
    for i in range(TENANTS):
        tenant = f"bench{i}"
        admin.create_tenant(tenant, plan="enterprise")
        created = admin.create_key("owner", tenant_id=tenant)
        admin.rebac_create(("user", "owner"), "owner", ("file", f"/tenants/{tenant}"),
                           tenant_id=tenant)
        admin.write(f"/tenants/{tenant}/f.bin", b"x" * KIB)
        keys.append(created["api_key"])
    admin.close()
    return keys


async def _async_reads(url: str, keys: list[str], concurrency: int,
                       total: int) -> tuple[float, int]:
    """Seconds for ``total`` calls at ``concurrency`` from this loop; peak threads."""
    clients = [nexus.connect_async(config={"url": url, "api_key": key}) for key in keys]
    peak = threading.active_count()
    left = total

    async def worker(c: int) -> None:
        nonlocal left, peak
        client = clients[c % len(clients)]
        path = f"/tenants/bench{c % len(clients)}/f.bin"
        while left > 0:
            left -= 1
            await client.stat(path)
            peak = max(peak, threading.active_count())

    for c in range(len(clients)):  # warm the pools
        await clients[c].stat(f"/tenants/bench{c}/f.bin")
    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in range(concurrency)))
    wall = time.perf_counter() - start
    for client in clients:
        await client.aclose()
    return wall, peak


def _sync_reads(url: str, keys: list[str], concurrency: int, total: int) -> tuple[float, int]:
    clients = [nexus.connect(config={"url": url, "api_key": keys[c % len(keys)]})
               for c in range(concurrency)]
    per = total // concurrency
    for c, client in enumerate(clients):
        client.stat(f"/tenants/bench{c % len(keys)}/f.bin")
    peak = threading.active_count()

    def worker(c: int) -> None:
        path = f"/tenants/bench{c % len(keys)}/f.bin"
        for _ in range(per):
            clients[c].stat(path)

    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        list(pool.map(worker, range(concurrency)))
        wall = time.perf_counter() - start
        peak = max(peak, threading.active_count())
    for client in clients:
        client.close()
    return wall, peak


async def _floor(url: str, concurrency: int, total: int) -> float:
    left = total
    async with httpx.AsyncClient(base_url=url,
                                 limits=httpx.Limits(max_connections=100)) as http:
        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                (await http.get("/")).raise_for_status()

        await http.get("/")
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def _write_many(server: ServerProcess, key: str, tenant: str) -> tuple[float, float]:
    client = nexus.connect(config={"url": server.url, "api_key": key, "timeout": 600})
    start = time.perf_counter()
    for batch in range(5):
        result = client.write_many({f"/tenants/{tenant}/many/{batch}/{i:04d}.txt": b"x"
                                    for i in range(1000)})
        assert result["written"] == 1000, result["failed"]
    many = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(500):
        client.write(f"/tenants/{tenant}/single/{i:04d}.txt", b"x")
    single = (time.perf_counter() - start) * 10
    client.close()
    return many, single


def run(backend: str, admin_url: str, quick: bool) -> None:
    total = 600 if quick else 3000
    with throwaway_store(backend, admin_url, db_prefix="nexus_bench_sdk_",
                         dir_prefix="nexus-bench-sdk-", tmp_parent=None) as (root, db_url):
        print(f"\n## {backend}\n")
        print("| figure | wall s | calls/s | × floor | client threads (peak) |")
        print("|---|---|---|---|---|")
        floors: dict[int, float] = {}
        with bare_app() as url:
            for n in CONCURRENCY:
                wall = asyncio.run(_floor(url, n, total))
                floors[n] = total / wall
                print(f"| floor_async_{n} | {wall:.2f} | {floors[n]:,.0f} | 1.00 | 1 |")
        server = ServerProcess(root / "data", db_url, root / "serve.log", log_level="warning")
        try:
            keys = _setup(server)
            for n in CONCURRENCY:
                wall, peak = asyncio.run(_async_reads(server.url, keys, n, total))
                rate = total / wall
                print(f"| async_{n} | {wall:.2f} | {rate:,.0f} | {rate / floors[n]:.2f} | "
                      f"{peak} |")
                wall, peak = _sync_reads(server.url, keys, n, total)
                rate = (total // n * n) / wall
                print(f"| sync_{n} | {wall:.2f} | {rate:,.0f} | {rate / floors[n]:.2f} | "
                      f"{peak} |")
            floor_create = sum(durable_create_samples(root, 5000, size=1))
            many, single = _write_many(server, keys[0], "bench0")
            print("\n| 5,000 one-byte files | s | × floor_create | target |")
            print("|---|---|---|---|")
            print(f"| floor_create (5,000 durable creates) | {floor_create:.2f} | 1.00 | |")
            print(f"| write_many (5 calls of 1,000) | {many:.2f} | "
                  f"{many / floor_create:.2f} | ≤ 3 s on SQLite |")
            print(f"| one_by_one (500 measured, ×10) | {single:.2f} | "
                  f"{single / floor_create:.2f} | |")
        finally:
            server.stop()


def main() -> None:
    parser = script_parser(__doc__)
    add_backend_option(parser)
    add_database_url_option(parser, "nexus_bench_sdk_")
    parser.add_argument("--quick", action="store_true", help="600 reads per figure")
    args = parser.parse_args()
    print("# bench/sdk.py")
    print(date_line())
    print(machine_line())
    print(python_version())
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        run(backend, args.database_url, args.quick)


if __name__ == "__main__":
    main()
