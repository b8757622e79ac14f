"""What a shared rate-limit admission costs: the database bucket Nexus uses
(``SharedRateLimiter``, one conditional UPDATE on ``rate_buckets``) on SQLite and
PostgreSQL, against the same token bucket as a Redis Lua script, and against the floor of
each store measured in the same run (``SELECT 1`` on the same pool; Redis ``PING``).

Run from the repository root::

    .venv/bin/python bench/rate_limits.py                  # SQLite, PostgreSQL and Redis
    .venv/bin/python bench/rate_limits.py --quick
    .venv/bin/python bench/rate_limits.py --redis-url redis://127.0.0.1:6379/0

For each store: ``--iters`` sequential admissions of one tenant (p50, p99), then
``--threads`` threads admitting the same tenant at once (the hot row: the case where a
shared bucket serialises), in calls per second. The plan is large enough that nothing is
refused: the figures are the cost of admitting, which every request pays. The in-process
bucket (one process's ``RateLimiter``, what Nexus had before) is shown for scale.

This decided docs/deployment.md's "why the database, not Redis": the Redis script is not
part of Nexus.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    DEFAULT_ADMIN_URL,
    add_database_url_option,
    machine_line,
    percentile,
    postgres_database,
    script_parser,
    timed,
)
from nexus.service.rate_limits import SharedRateLimiter
from nexus.store import Database
from nexus.tenancy import RateLimiter

RATE, BURST = 1e9, 10**9  # nothing is ever refused: only the cost of admitting shows

#: The same rule as RateLimiter (refill, take if it can pay, count), as one Redis script.
LUA = """
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local rate, burst, cost, need, now = tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if tokens < need then return 0 end
redis.call('HSET', KEYS[1], 'tokens', math.max(tokens, need) - cost, 'at', now)
redis.call('HINCRBY', KEYS[1], 'calls', 1)
return 1
"""


def row(name: str, samples: list[float], floor_p50: float | None) -> str:
    p50 = statistics.median(samples) * 1000
    ratio = f"{p50 / floor_p50:5.2f}x" if floor_p50 else "     -"
    return (f"  {name:<38} p50 {p50:7.3f} ms  p99 {percentile(samples, 99) * 1000:7.3f} ms"
            f"  {ratio} floor")


def concurrent(fn: Callable[[int], object], threads: int, per_thread: int) -> float:
    """Calls per second of ``threads`` threads calling ``fn`` ``per_thread`` times."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for i in range(per_thread):
            fn(i)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    return threads * per_thread / (time.perf_counter() - started)


def database_case(label: str, db: Database, iters: int, threads: int) -> list[str]:
    db.migrate()
    limiter = SharedRateLimiter(db)

    def admit(_i: int) -> None:
        assert limiter.admit("bench", RATE, BURST, calls=1) == 0.0

    def floor(_i: int) -> None:
        db.counters(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

    timed(admit, 50)
    timed(floor, 50)
    floor_samples = timed(floor, iters)
    admit_samples = timed(admit, iters)
    floor_p50 = statistics.median(floor_samples) * 1000
    per_second = concurrent(admit, threads, max(1, iters // threads))
    floor_per_second = concurrent(floor, threads, max(1, iters // threads))
    return [f"{label}:",
            row("floor: SELECT 1, same connections", floor_samples, None),
            row("admission (UPDATE rate_buckets)", admit_samples, floor_p50),
            f"  {threads} threads, one tenant: {per_second:8.0f} admissions/s "
            f"({floor_per_second:.0f}/s SELECT 1: {per_second / floor_per_second:.2f}x)"]


def redis_case(url: str, iters: int, threads: int) -> list[str]:
    try:
        import redis
    except ImportError:
        return ["Redis: skipped (pip install redis)"]
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        return [f"Redis: unreachable at {url} ({exc})"]
    script = client.register_script(LUA)
    key = f"nexus-bench:{time.time_ns()}"

    def admit(_i: int) -> None:
        assert script(keys=[key], args=[RATE, BURST, 1, 1, time.time()]) == 1

    def floor(_i: int) -> None:
        client.ping()

    try:
        timed(admit, 50)
        floor_samples = timed(floor, iters)
        admit_samples = timed(admit, iters)
        floor_p50 = statistics.median(floor_samples) * 1000
        per_second = concurrent(admit, threads, max(1, iters // threads))
    finally:
        client.delete(key)
    return [f"Redis ({url}):",
            row("floor: PING", floor_samples, None),
            row("admission (EVALSHA token bucket)", admit_samples, floor_p50),
            f"  {threads} threads, one tenant: {per_second:8.0f} admissions/s"]


def main() -> int:
    parser = script_parser(__doc__)
    add_database_url_option(parser, "bench_rates_")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--iters", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="1,000 iterations")
    args = parser.parse_args()
    iters = 1000 if args.quick else args.iters
    print(f"rate-limit admission cost, {iters} sequential calls, {args.threads} threads")
    print(machine_line())
    in_process = RateLimiter()
    print(row("in-process RateLimiter (one process only)",
              timed(lambda _i: in_process.admit("bench", RATE, BURST), iters), None))
    with tempfile.TemporaryDirectory(prefix="bench-rates-") as tmp:
        sqlite = Database.for_data_dir(Path(tmp))
        try:
            lines = database_case("SQLite (WAL, synchronous=NORMAL for counters)", sqlite,
                                  iters, args.threads)
        finally:
            sqlite.dispose()
    print("\n".join(lines))
    with postgres_database(args.database_url or DEFAULT_ADMIN_URL, "bench_rates_") as url:
        postgres = Database(url)
        try:
            print("\n".join(database_case("PostgreSQL (asynchronous commit for counters)",
                                          postgres, iters, args.threads)))
        finally:
            postgres.dispose()
    print("\n".join(redis_case(args.redis_url, iters, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
