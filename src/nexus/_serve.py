"""``nexus serve`` as a child process on a free loopback port, healthy before it is used.

The one helper for everything that runs a server of its own — ``nexus demo``, the
benchmarks in ``bench/`` and the tests that need a real socket and a real process — so
that starting, waiting for ``/health``, stopping (SIGTERM, as an orchestrator does) and
killing (``kill -9``) mean the same everywhere.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from nexus.errors import UnavailableError

__all__ = ["NEXUS", "ServeProcess", "free_port"]

#: The CLI, run with this interpreter (so a virtual environment's server is the one run).
NEXUS = (sys.executable, "-m", "nexus.cli")
#: Start attempts: a free port can be taken by someone else between probe and bind.
_ATTEMPTS = 3


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    """``python -m nexus.cli serve --host 127.0.0.1 --port <free> --data-dir <data_dir>
    [--database-url <database_url>] [extra_args]``.

    :meth:`start` returns once ``/health`` answers 200 (or raises
    :class:`~nexus.errors.UnavailableError` with the end of the log). The output goes to
    ``log_path`` — a file, not a pipe, which a chatty access log could fill — and is
    appended, so a restart on the same log keeps the earlier run's lines; without one it
    is ``serve-<port>.log`` next to the data directory. The child's environment is this
    process's minus ``drop_env`` plus ``env``.
    """

    def __init__(self, data_dir: Path, database_url: str | None = None, *,
                 log_path: Path | None = None, extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, drop_env: Collection[str] = (),
                 startup_seconds: float = 60.0, stop_seconds: float = 30.0) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.drop_env = frozenset(drop_env)
        self.startup_seconds = startup_seconds
        self.stop_seconds = stop_seconds
        self.log_path = log_path
        self.port = 0
        self.url = ""
        self.args: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> ServeProcess:
        """Start and wait until healthy; a port taken meanwhile is retried on another."""
        for _attempt in range(_ATTEMPTS):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            if self.log_path is None:
                self.log_path = self.data_dir.parent / f"serve-{self.port}.log"
            self.args = [*NEXUS, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                         "--data-dir", str(self.data_dir), *self.extra_args]
            if self.database_url:
                self.args += ["--database-url", self.database_url]
            env = {k: v for k, v in os.environ.items() if k not in self.drop_env}
            env.update(self.env)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            begun = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env)
            problem = self._wait_healthy(time.monotonic() + self.startup_seconds)
            if problem is None:
                return self
            if b"already in use" not in self.log_path.read_bytes()[begun:]:
                break
        raise UnavailableError(f"nexus serve {problem}; its log ends with:\n"
                               f"{self.log_tail()}")

    def _wait_healthy(self, deadline: float) -> str | None:
        """None once ``/health`` answers 200, else what went wrong (the process is gone)."""
        assert self.proc is not None
        while True:
            code = self.proc.poll()
            if code is not None:
                return f"exited with {code} before it was healthy"
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return None
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                return f"did not become healthy in {self.startup_seconds:g} s"
            time.sleep(0.05)

    def stop(self) -> int | None:
        """SIGTERM (the server drains in-flight requests), SIGKILL after ``stop_seconds``;
        the exit status (None if it never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_seconds)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> int:
        """``kill -9``: no shutdown code runs; the exit status (``-SIGKILL``)."""
        assert self.proc is not None, "not started"
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def __enter__(self) -> ServeProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what it tells -----------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def admin_key(self) -> str:
        """The bootstrap administrator key the first start wrote to the data directory."""
        return (self.data_dir / "admin.key").read_text().strip()

    def health(self) -> dict[str, Any]:
        """``/health``'s JSON answer."""
        return dict(httpx.get(self.url + "/health", timeout=5).json())

    def output(self) -> str:
        """Everything the process (and earlier ones on the same log) printed."""
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:]) or "(no output)"
