"""``nexus serve`` as a real process on a free loopback port, for the tests that need a
real socket and a real process: the end-to-end and CLI tests, crash consistency (it
kills the process) and the stress tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

import nexus
from nexus.client import NexusClient
from nexus.settings import Settings

__all__ = ["NEXUS", "NexusProcess", "free_port", "tenant_key"]

#: The CLI, run with this interpreter (the test's virtual environment).
NEXUS = [sys.executable, "-m", "nexus.cli"]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NexusProcess:
    """``nexus serve`` started on ``data_dir`` and healthy when the constructor returns;
    its output goes to ``log`` (appended, so a restart on the same log keeps the first
    run's lines)."""

    def __init__(self, data_dir: Path, database_url: str | None = None, *,
                 log: Path | None = None, extra_args: Sequence[str] = (),
                 env: dict[str, str] | None = None, startup_seconds: float = 60) -> None:
        self.data_dir, self.database_url = data_dir, database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log or data_dir.parent / f"serve-{self.port}.log"
        args = [*NEXUS, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(data_dir), *extra_args]
        if database_url:
            args += ["--database-url", database_url]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **(env or {})})
        self._wait_healthy(time.monotonic() + startup_seconds)

    def _wait_healthy(self, deadline: float) -> None:
        while True:
            assert self.proc.poll() is None, f"server exited:\n{self.output()[-3000:]}"
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"server did not become healthy:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    @property
    def admin_key(self) -> str:
        """The bootstrap administrator key the first start wrote to the data directory."""
        return (self.data_dir / "admin.key").read_text().strip()

    def client(self, api_key: str | None = None, timeout: float = 60.0) -> NexusClient:
        """A remote client with ``api_key`` (default: the administrator's)."""
        return nexus.connect(config={"url": self.url, "api_key": api_key or self.admin_key,
                                     "timeout": timeout})

    def settings(self) -> Settings:
        """Settings that open the same store in-process."""
        return Settings(data_dir=self.data_dir, database_url=self.database_url)

    def output(self) -> str:
        """Everything the process (and earlier ones on the same log) printed."""
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def tenant_key(admin: NexusClient, tenant: str, user: str, *, owner: bool = False) -> str:
    """A key for ``user`` of ``tenant`` (made owner of the tenant root if asked)."""
    key = admin._call_rpc("admin_create_key", {"user_id": user, "name": user,
                                               "tenant_id": tenant})["api_key"]
    if owner:
        admin.rebac_create(("user", user), "owner", ("file", f"/tenants/{tenant}"),
                           tenant_id=tenant)
    return str(key)
