"""A deployment of several real ``nexus serve`` replicas on loopback: one fresh PostgreSQL
database, one shared blob store (``NEXUS_BLOB_URL``), one deployment secret
(``NEXUS_SECRET``) and a data directory of its own per replica — as docs/deployment.md
tells an operator to run them.

The first replica creates the deployment (tables, deployment id, blob store marker and
the administrator key in its data directory); the others start after it and *join*
(src/nexus/service/deployment.py, rule 4: a data directory without an id file joins a
database that has one). Started together on an empty database, two replicas would race
to create the deployment, which is not what an operator does either.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, text

from nexus.blobs import BlobStore, blob_store_from_url
from nexus.client import NexusClient
from tests.serving import NEXUS, NexusProcess

__all__ = ["BlobTarget", "Deployment", "fresh_database", "local_blobs", "poll",
           "running_deployment"]

T = TypeVar("T")

#: Every replica lets this many streams of one tenant (and in all) run at once: the
#: concurrency tests push ~35 uploads of one tenant through each replica, and the default
#: per-tenant cap (8, tested in tests/server/test_fair_serving.py) would refuse most.
STREAM_ARGS = ("--streams-per-tenant", "36", "--streams-total", "36")


@dataclass(frozen=True)
class BlobTarget:
    """The shared blob store: its ``NEXUS_BLOB_URL`` and what else a process needs in its
    environment to reach it (an S3 endpoint and credentials; nothing for a directory)."""

    kind: str
    url: str
    env: Mapping[str, str] = field(default_factory=dict)

    def open(self) -> BlobStore:
        """The store as this test process sees it (for counting what is in it)."""
        return blob_store_from_url(self.url)


def local_blobs(root: Path) -> BlobTarget:
    """A shared local directory, as several replicas on one machine (or an NFS mount)
    would use it."""
    root.mkdir(parents=True, exist_ok=True)
    return BlobTarget("file", f"file://{root}")


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A brand-new PostgreSQL database on ``admin_url``'s server (dropped afterwards), as
    the libpq URL ``nexus serve --database-url`` takes."""
    name = f"nexus_replicas_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield (admin_url.rsplit("/", 1)[0] + "/" + name).replace(
            "postgresql+psycopg://", "postgresql://")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Deployment:
    """The running replicas (``replicas[0]`` created the deployment) and what they share."""

    root: Path
    database_url: str
    blobs: BlobTarget
    secret: str
    replicas: list[NexusProcess]
    extra_args: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, str]:
        """What every process of the deployment (servers and maintenance) is given."""
        return {"NEXUS_SECRET": self.secret, "NEXUS_BLOB_URL": self.blobs.url,
                **self.blobs.env}

    @property
    def admin_key(self) -> str:
        return self.replicas[0].admin_key

    @property
    def live(self) -> list[NexusProcess]:
        return [r for r in self.replicas if r.proc is not None and r.proc.poll() is None]

    def client(self, replica: int, api_key: str | None = None,
               timeout: float = 60.0) -> NexusClient:
        """A client of ``replicas[replica]`` with ``api_key`` (default: the administrator)."""
        return self.replicas[replica].client(api_key or self.admin_key, timeout=timeout)

    def start_replica(self, name: str) -> NexusProcess:
        return NexusProcess(self.root / name / "data", self.database_url,
                            log=self.root / name / "serve.log", env=self.env,
                            extra_args=("--log-level", "warning", *self.extra_args))

    def fsck(self, replica: int = 0, *args: str) -> subprocess.CompletedProcess[str]:
        """``nexus fsck --json`` against the shared database and blob store, from
        ``replicas[replica]``'s data directory."""
        server = self.replicas[replica]
        return subprocess.run(
            [*NEXUS, "fsck", "--json", "--data-dir", str(server.data_dir), "--database-url",
             self.database_url, *args], capture_output=True, text=True, timeout=120,
            env={**os.environ, **self.env})

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


@contextmanager
def running_deployment(root: Path, database_url: str, blobs: BlobTarget, *, count: int = 3,
                       extra_args: Sequence[str] = STREAM_ARGS) -> Iterator[Deployment]:
    """``count`` healthy replicas of one new deployment; all stopped (SIGTERM) after."""
    deployment = Deployment(root, database_url, blobs, secrets.token_urlsafe(32), [],
                            tuple(extra_args))
    try:
        deployment.replicas.append(deployment.start_replica("a"))
        names = [chr(ord("a") + i) for i in range(1, count)]
        with ThreadPoolExecutor(len(names) or 1) as pool:
            deployment.replicas += list(pool.map(deployment.start_replica, names))
        yield deployment
    finally:
        deployment.stop()


def poll(probe: Callable[[], T | None], *, seconds: float, interval: float = 0.005,
         what: str = "the condition") -> tuple[T, float]:
    """Call ``probe`` until it returns something other than None; that value and the
    seconds it took (from this call). Raises AssertionError after ``seconds``."""
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        value = probe()
        if value is not None:
            return value, time.perf_counter() - started
        if time.perf_counter() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds:g} s")
        time.sleep(interval)
