"""``nexus serve``: bootstrap the deployment, then run the HTTP server."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
from pathlib import Path

import uvicorn

from nexus.cli.render import console, err_console
from nexus.errors import InvalidArgumentError
from nexus.server import create_app
from nexus.service import NexusService, bootstrap
from nexus.settings import Settings

__all__ = ["ADMIN_KEY_FILE", "run_server", "write_admin_key"]

ADMIN_KEY_FILE = "admin.key"


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
    """Store the bootstrap key at ``<data_dir>/admin.key``, readable by its owner only."""
    path = data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return path


def bootstrap_admin(service: NexusService) -> None:
    """First start: create, print once and save the system administrator's key."""
    key = service.keys.bootstrap_admin_key()
    if key is None:
        return
    path = write_admin_key(service.settings.data_dir, key)
    console.print("[bold]Created the system administrator's API key (shown once):[/bold]")
    console.print(key, soft_wrap=True, highlight=False)
    console.print(f"It is also saved in {path} (mode 0600).")


def run_server(settings: Settings, *, host: str, port: int, log_level: str) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests are drained before exit."""
    ensure_port_free(host, port)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s "
                        "%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    service = bootstrap(settings)
    bootstrap_admin(service)
    app = create_app(service=service)
    err_console.print(f"Nexus listening on http://{host}:{port} "
                      f"(data: {settings.data_dir}, metadata: "
                      f"{'PostgreSQL' if settings.database_url else 'SQLite'})")
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to
    # the handler it found: make that handler a no-op so a drained shutdown exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False,
                    timeout_graceful_shutdown=30, server_header=False)
    finally:
        service.close()
