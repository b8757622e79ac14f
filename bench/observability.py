"""What metrics and logging cost per request (issue #8).

Two measurements:

1. **Middleware in isolation.** A trivial ASGI endpoint (200, no body) is called
   in-process, directly through the ASGI interface, bare and then wrapped as the server
   wraps it: + ``MetricsMiddleware``; + ``RequestIdMiddleware`` with the access log off
   (level WARNING); with the access log on in ``text`` and in ``json`` format, written to
   a real file. The differences are the per-request CPU cost of each layer.
2. **A real request for scale.** The same authenticated ``stat`` through the full app
   (``create_app`` on SQLite, in-process via the ASGI interface), with the access log off
   and on (json): the observability share of a real request.

Also times a ``/metrics`` scrape of that app.

    .venv/bin/python bench/observability.py            # ~30 s
    .venv/bin/python bench/observability.py --requests 20000
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import load_averages, script_parser
from nexus.logs import configure_logging
from nexus.server import create_app
from nexus.server.metrics import Metrics, MetricsMiddleware
from nexus.server.middleware import RequestIdMiddleware
from nexus.service import bootstrap
from nexus.settings import Settings
from nexus.types import Principal

ASGI = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                 Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


async def _endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _scope(path: str, method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None,
           query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
            "query_string": query, "headers": headers or [], "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80), "scheme": "http", "http_version": "1.1",
            "root_path": "", "app": None}


async def _time(app: ASGI, scope: dict[str, Any], body: bytes, requests: int) -> list[float]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        await app(dict(scope), receive, send)
        samples.append(time.perf_counter() - started)
    assert set(statuses) == {200}, set(statuses)
    return samples


def _logging(mode: str, log_file: Path) -> None:
    """``off`` (WARNING: no access line), ``text`` or ``json`` to a real file."""
    configure_logging("warning" if mode == "off" else "info",
                      "json" if mode == "json" else "text")
    root = logging.getLogger()
    handler = logging.FileHandler(log_file)
    handler.setFormatter(root.handlers[0].formatter)
    root.handlers[:] = [handler]


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.fmean(ordered) * 1e6, ordered[len(ordered) // 2] * 1e6


def middleware_costs(service: Any, requests: int, log_file: Path) -> list[tuple[str, float,
                                                                                 float]]:
    metrics = Metrics(service)
    layers: list[tuple[str, str, ASGI]] = [
        ("bare endpoint", "off", _endpoint),
        ("+ metrics", "off", MetricsMiddleware(_endpoint, metrics)),
        ("+ request id, log off", "off",
         RequestIdMiddleware(MetricsMiddleware(_endpoint, metrics))),
        ("+ access log, text", "text",
         RequestIdMiddleware(MetricsMiddleware(_endpoint, metrics))),
        ("+ access log, json", "json",
         RequestIdMiddleware(MetricsMiddleware(_endpoint, metrics))),
    ]
    rows = []
    scope = _scope("/api/nfs/stat")
    for name, mode, app in layers:
        _logging(mode, log_file)
        asyncio.run(_time(app, scope, b"", 500))  # warm-up
        rounds = [_summary(asyncio.run(_time(app, scope, b"", requests)))
                  for _ in range(3)]
        mean, p50 = min(rounds)  # the least disturbed of three rounds
        rows.append((name, mean, p50))
    return rows


def real_request_costs(service: Any, requests: int, log_file: Path) -> list[tuple[str, float,
                                                                                   float]]:
    admin = Principal.local_admin()
    service.tenants.create_tenant(admin, "acme", plan="enterprise")
    key = service.keys.admin_create_key(admin, "alice", "bench", tenant_id="acme")["api_key"]
    service.rebac.rebac_create(admin, ("user", "alice"), "owner", ("file", "/tenants/acme"))
    service.files.write(admin, "/tenants/acme/f", b"x" * 1024)
    app = create_app(service=service)
    scope = _scope("/api/nfs/stat", headers=[(b"authorization", f"Bearer {key}".encode()),
                                             (b"content-type", b"application/json")])
    body = json.dumps({"params": {"path": "/tenants/acme/f"}}).encode()
    rows = []
    for mode in ("off", "json", "off", "json"):  # interleaved against drift
        _logging(mode, log_file)
        asyncio.run(_time(app, scope, body, 200))
        mean, p50 = _summary(asyncio.run(_time(app, scope, body, requests // 4)))
        rows.append((f"authenticated stat, access log {mode}", mean, p50))
    admin_key = service.keys.admin_create_key(admin, "root", "bench", is_admin=True)["api_key"]
    scrape = _scope("/metrics", method="GET",
                    headers=[(b"authorization", f"Bearer {admin_key}".encode())])
    _logging("off", log_file)
    mean, p50 = _summary(asyncio.run(_time(app, scrape, b"", 200)))
    rows.append(("GET /metrics (scrape)", mean, p50))
    return rows


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--requests", type=int, default=10_000,
                        help="requests per layer and round (default 10,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        service = bootstrap(Settings(data_dir=Path(tmp) / "data"))
        log_file = Path(tmp) / "server.log"
        try:
            layers = middleware_costs(service, args.requests, log_file)
            real = real_request_costs(service, args.requests, log_file)
        finally:
            service.close()
            logging.getLogger().handlers.clear()
        lines = sum(1 for _ in log_file.open())
    loads = load_averages()
    print(f"# bench/observability.py  {time.strftime('%Y-%m-%d %H:%M')}  "
          f"{os.cpu_count()} CPUs  {platform.python_version()}  "
          f"load {'?' if loads is None else f'{loads[0]:.2f}'}")
    print(f"{'layer':40} {'mean µs':>9} {'p50 µs':>9} {'added µs':>9}")
    previous = None
    for name, mean, p50 in layers:
        added = "" if previous is None else f"{mean - previous:+9.1f}"
        print(f"{name:40} {mean:9.1f} {p50:9.1f} {added:>9}")
        if not name.startswith("+ access log"):
            previous = mean
    print()
    for name, mean, p50 in real:
        print(f"{name:40} {mean:9.1f} {p50:9.1f}")
    print(f"\n{lines} access-log lines written to a real file during the run")


if __name__ == "__main__":
    main()
