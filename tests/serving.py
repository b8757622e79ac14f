"""``nexus serve`` as a real process on a free loopback port, for the tests that need a
real socket and a real process: the end-to-end and CLI tests, crash consistency (it
kills the process), the stress tests and the replica harness. The process handling is
:class:`nexus._serve.ServeProcess`'s; this adds what only tests want (a client, the
same store's settings) and starts in the constructor."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nexus
from nexus._serve import NEXUS as _NEXUS
from nexus._serve import ServeProcess, free_port
from nexus.client import NexusClient
from nexus.settings import Settings

__all__ = ["NEXUS", "NexusProcess", "free_port", "hammer", "tenant_key"]

#: The CLI, run with this interpreter (the test's virtual environment).
NEXUS = list(_NEXUS)


class NexusProcess(ServeProcess):
    """``nexus serve`` started on ``data_dir`` and healthy when the constructor returns;
    its output goes to ``log`` (appended, so a restart on the same log keeps the first
    run's lines)."""

    def __init__(self, data_dir: Path, database_url: str | None = None, *,
                 log: Path | None = None, extra_args: Sequence[str] = (),
                 env: dict[str, str] | None = None, startup_seconds: float = 60) -> None:
        super().__init__(data_dir, database_url, log_path=log, extra_args=extra_args,
                         env=env, startup_seconds=startup_seconds)
        self.start()

    def client(self, api_key: str | None = None, timeout: float = 60.0) -> NexusClient:
        """A remote client with ``api_key`` (default: the administrator's)."""
        return nexus.connect(config={"url": self.url, "api_key": api_key or self.admin_key,
                                     "timeout": timeout})

    def settings(self) -> Settings:
        """Settings that open the same store in-process."""
        return Settings(data_dir=self.data_dir, database_url=self.database_url)

    def kill(self) -> int:
        code = super().kill()
        assert code == -signal.SIGKILL, f"exit {code}, not kill -9's"
        return code


def tenant_key(admin: NexusClient, tenant: str, user: str, *, owner: bool = False) -> str:
    """A key for ``user`` of ``tenant`` (made owner of the tenant root if asked)."""
    key = admin._call_rpc("admin_create_key", {"user_id": user, "name": user,
                                               "tenant_id": tenant})["api_key"]
    if owner:
        admin.rebac_create(("user", user), "owner", ("file", f"/tenants/{tenant}"),
                           tenant_id=tenant)
    return str(key)


def hammer(clients: Sequence[NexusClient], call: Callable[[NexusClient], object],
           seconds: float) -> tuple[int, int]:
    """Every client calls ``call`` as fast as it can for ``seconds``: ``(admitted,
    refused)``, refused meaning :class:`nexus.RateLimitedError`."""
    counts = [0, 0]
    lock = threading.Lock()
    stop = threading.Event()

    def run(client: NexusClient) -> None:
        while not stop.is_set():
            try:
                call(client)
            except nexus.RateLimitedError:
                outcome = 1
            else:
                outcome = 0
            with lock:
                counts[outcome] += 1

    with ThreadPoolExecutor(len(clients)) as pool:
        futures = [pool.submit(run, client) for client in clients]
        stop.wait(seconds)
        stop.set()
        for future in futures:
            future.result()
    return counts[0], counts[1]
