"""``nexus serve``: bootstrap the deployment, then run the HTTP server."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from nexus.cli.render import console
from nexus.errors import InvalidArgumentError
from nexus.logs import LogFormat, configure_logging
from nexus.server import create_app, create_metrics_app
from nexus.service import NexusService, bootstrap
from nexus.service.deployment import ADMIN_KEY_FILE
from nexus.settings import Settings

__all__ = ["ADMIN_KEY_FILE", "parse_workers", "run_server", "worker_app", "write_admin_key"]

logger = logging.getLogger("nexus.server")

#: How long an idle keep-alive connection stays open. Longer than clients keep theirs
#: (httpx, hence the SDK: 5 s): with uvicorn's default of 5 s both ends expire together,
#: and a request sent on a connection the server is just closing fails with "server
#: disconnected without sending a response" (seen once in a few thousand reads).
KEEP_ALIVE_SECONDS = 30


def ensure_port_free(host: str, port: int) -> None:
    """Fail with a clear message if ``host:port`` is taken (never touch its owner)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidArgumentError(
                    f"port {port} on {host} is already in use by another process; "
                    "stop it or choose another --port") from None
            raise InvalidArgumentError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def write_admin_key(data_dir: Path, key: str) -> Path:
    """Store the bootstrap key at ``<data_dir>/admin.key``, readable by its owner only.
    An existing file is never replaced (``FileExistsError``): it may be the only copy of
    some deployment's key."""
    path = data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o600)
    return path


def bootstrap_admin(service: NexusService) -> None:
    """First start: create, print once and save the system administrator's key — unless
    ``admin.key`` already exists, which is left exactly as it is."""
    if (service.settings.data_dir / ADMIN_KEY_FILE).exists():
        return  # (no new key either: `nexus admin create-key --admin` makes one)
    key = service.keys.bootstrap_admin_key()
    if key is None:
        return
    path = write_admin_key(service.settings.data_dir, key)
    console.print("[bold]Created the system administrator's API key (shown once):[/bold]")
    console.print(key, soft_wrap=True, highlight=False)
    console.print(f"It is also saved in {path} (mode 0600).")


def parse_workers(value: str) -> int:
    """``--workers``: a count of at least 1, or ``auto`` (one per CPU core)."""
    if value.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise InvalidArgumentError(f"--workers must be a number of at least 1 or 'auto', "
                                   f"not {value!r}")
    return count


def run_server(settings: Settings, *, host: str, port: int, log_level: str,
               log_format: LogFormat = "text", metrics_host: str = "127.0.0.1",
               metrics_port: int | None = None,
               forwarded_allow_ips: list[str] | None = None, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests are drained before exit.

    With ``metrics_port``, ``/metrics`` is also served without a key on
    ``metrics_host:metrics_port`` (a private interface for the scraper).
    ``forwarded_allow_ips`` lists the proxies whose ``X-Forwarded-For`` is believed; by
    default nobody's (uvicorn would believe 127.0.0.1's, i.e. any local client's, and
    the audit log would record whatever address a client wrote there).
    With ``workers`` > 1, uvicorn's supervisor runs that many worker processes on the
    one socket (:func:`run_workers`).
    """
    ensure_port_free(host, port)
    if metrics_port is not None:
        if workers > 1:
            raise InvalidArgumentError(
                "--metrics-port serves one process's request metrics; with --workers "
                f"{workers} each worker has its own. Use --workers 1 per replica (and "
                "more replicas), or scrape /metrics on the main port, which answers for "
                "the worker that takes the request")
        ensure_port_free(metrics_host, metrics_port)
    configure_logging(log_level, log_format)
    service = bootstrap(settings)
    bootstrap_admin(service)
    logger.info("Nexus listening on http://%s:%d (data: %s, metadata: %s, blobs: %s, "
                "workers: %d)", host, port, settings.data_dir,
                "PostgreSQL" if settings.database_url else "SQLite",
                settings.blob_url or settings.data_dir / "blobs", workers)
    if workers > 1:
        # The deployment exists now (tables migrated, ids and admin key written): the
        # workers only join it, none races another to create it.
        service.close()
        run_workers(settings, host=host, port=port, log_level=log_level,
                    log_format=log_format, workers=workers,
                    forwarded_allow_ips=forwarded_allow_ips or [])
        return
    app = create_app(service=service)
    metrics_server = None
    if metrics_port is not None:
        metrics_server = start_metrics_server(create_metrics_app(app), metrics_host,
                                              metrics_port, log_level)
        logger.info("Metrics on http://%s:%d/metrics (no key)", metrics_host, metrics_port)
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to
    # the handler it found: make that handler a no-op so a drained shutdown exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False,
                    timeout_graceful_shutdown=30, server_header=False, log_config=None,
                    timeout_keep_alive=KEEP_ALIVE_SECONDS,
                    limit_concurrency=settings.max_connections,
                    **proxy_options(forwarded_allow_ips or []))
    finally:
        if metrics_server is not None:
            metrics_server.should_exit = True
        service.close()


#: The environment variable that carries a worker's configuration from the supervisor.
WORKER_CONFIG = "NEXUS_WORKER_CONFIG"


def run_workers(settings: Settings, *, host: str, port: int, log_level: str,
                log_format: LogFormat, workers: int, forwarded_allow_ips: list[str]) -> None:
    """uvicorn's supervisor: it binds the socket, starts ``workers`` processes that each
    build their own service (:func:`worker_app`), restarts one that dies, and on
    SIGTERM/SIGINT sends each SIGTERM, whereupon each drains its requests, then exits.

    What the processes must agree on is in the database (rate buckets, request counts,
    quotas) or reaches them as change events (tenant state, tuples; polled from
    ``cache_events`` on SQLite): N workers are N replicas that share a socket."""
    fields = {name: str(value) if isinstance(value, Path) else value
              for name, value in vars(settings).items() if name != "secret"}
    os.environ[WORKER_CONFIG] = json.dumps(
        {"settings": fields, "log_level": log_level, "log_format": log_format})
    if settings.secret is not None:
        os.environ["NEXUS_SECRET"] = settings.secret  # inherited, never on a command line
    uvicorn.run("nexus.cli.serve:worker_app", factory=True, workers=workers, host=host,
                port=port, log_level=log_level.lower(), access_log=False,
                timeout_graceful_shutdown=30, server_header=False, log_config=None,
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
                limit_concurrency=settings.max_connections,
                **proxy_options(forwarded_allow_ips))


def worker_app() -> ASGIApp:
    """One worker's app (uvicorn calls this in each worker process): its own service,
    closed when the worker's lifespan ends."""
    config = json.loads(os.environ[WORKER_CONFIG])
    configure_logging(config["log_level"], config["log_format"])
    return create_app(Settings.load(config["settings"]))


def proxy_options(forwarded_allow_ips: list[str]) -> dict[str, object]:
    """uvicorn's proxy-header settings: off unless some proxy is trusted."""
    if not forwarded_allow_ips:
        return {"proxy_headers": False, "forwarded_allow_ips": []}
    return {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}


def start_metrics_server(app: ASGIApp, host: str, port: int, log_level: str) -> uvicorn.Server:
    """Run ``app`` in a daemon thread; it stops when ``should_exit`` is set (signals are
    the main server's: uvicorn only listens for them on the main thread)."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                                           log_level=log_level.lower(), access_log=False,
                                           server_header=False))
    threading.Thread(target=server.run, name="nexus-metrics", daemon=True).start()
    return server
