"""Crash consistency of a real server: ``kill -9`` under a concurrent upload load.

A real ``nexus serve`` process (SQLite data directory, or PostgreSQL metadata) gets a
tenant and a key; N concurrent writers stream uploads of mixed sizes over HTTP
(``PUT /api/fs/content``, chunked or with ``Content-Length``), each to a fresh path or to
the writer's own "hot" path that it overwrites round after round. At a random moment the
server is killed with SIGKILL, then restarted on the same data, and:

- every ACKNOWLEDGED upload (200 with the etag of what was sent) reads back with its
  SHA-256 — for a hot path: the last acknowledged content, or a later upload that was
  fully sent but whose answer the kill swallowed;
- no partial file is visible: every file listed has a path that was uploaded to and a
  content hash equal to one of the contents sent in full to that path (read back and
  hashed, not only its etag);
- the tenant's usage counters equal the stored bytes and files;
- ``nexus fsck`` (a CLI subprocess) reports clean: blobs ↔ rows ↔ counters ↔ audit chain.

CI size: a few rounds, 20 writers, ≤ 1 MiB, both backends. Full size (``slow``): 20
rounds, 200 writers, 0 B–64 MiB. Counts go to the "security stress" summary section.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import nexus
from tests.serving import NEXUS, NexusProcess

#: The server logs warnings only: 200 writers × 20 rounds of access lines say nothing here.
QUIET = {"NEXUS_LOG_LEVEL": "warning"}
TENANT = "crash"
MIB = 1 << 20
_BLOCKS = [random.Random(i).randbytes(MIB) for i in range(8)]


@dataclass(frozen=True)
class Load:
    rounds: int
    writers: int
    max_size: int
    kill_after: tuple[float, float]  # seconds of load before the kill, uniform
    hot_share: float = 0.25  # fraction of uploads that overwrite the writer's hot path
    deep_fsck_every_round: bool = True
    # Between rounds, remove the round before the last (rmdir, refunded) and run
    # `nexus gc --grace 0` (the load is stopped), so the disk holds about two rounds.
    prune: bool = False


CI = Load(rounds=2, writers=20, max_size=MIB, kill_after=(0.4, 1.2))
FULL = Load(rounds=20, writers=200, max_size=64 * MIB, kill_after=(2.0, 20.0),
            deep_fsck_every_round=False, prune=True)


# -- the server ----------------------------------------------------------------------------


# -- what was sent -------------------------------------------------------------------------


@dataclass
class Upload:
    path: str
    size: int
    round: int
    sha: str | None = None  # known once the whole body was handed to the connection
    acked: bool = False


@dataclass
class History:
    """Every upload per path, in the order each path's (single) writer sent them."""

    by_path: dict[str, list[Upload]] = field(default_factory=dict)
    started: int = 0
    acked: int = 0
    rate_limited: int = 0

    def add(self, upload: Upload) -> None:
        self.by_path.setdefault(upload.path, []).append(upload)
        self.started += 1

    def allowed(self, path: str) -> set[str | None]:
        """Contents the path may show now (``None``: absent). After its last acknowledged
        upload only that one, or a later one that was fully sent (its answer lost)."""
        uploads = self.by_path.get(path, [])
        last = max((i for i, u in enumerate(uploads) if u.acked), default=-1)
        later = {u.sha for u in uploads[last + 1:] if u.sha is not None}
        return later | ({uploads[last].sha} if last >= 0 else {None})


def _content(seed: str, size: int) -> Iterator[bytes]:
    """Deterministic, unique-per-seed bytes in ≤ 1 MiB chunks (never all in memory)."""
    rng = random.Random(seed)
    head = (seed.encode() + b"\n")[:size]
    if head:
        yield head
    left = size - len(head)
    while left > 0:
        block = _BLOCKS[rng.randrange(len(_BLOCKS))]
        start = rng.randrange(MIB)
        n = min(left, MIB - start)
        yield block[start:start + n]
        left -= n


def _size(rng: random.Random, max_size: int) -> int:
    roll = rng.random()
    if roll < 0.05:
        return 0
    if roll < 0.10:
        return max_size
    return int(math.exp(rng.uniform(0, math.log(max_size))))  # log-uniform: mostly small


# -- one round -----------------------------------------------------------------------------


async def _writer(client: httpx.AsyncClient, history: History, stop: asyncio.Event,
                  load: Load, round_no: int, writer: int, rng: random.Random) -> None:
    seq = 0
    while not stop.is_set():
        hot = rng.random() < load.hot_share
        path = (f"/tenants/{TENANT}/hot/w{writer:03d}.bin" if hot
                else f"/tenants/{TENANT}/r{round_no:02d}/w{writer:03d}/f{seq:04d}.bin")
        upload = Upload(path, _size(rng, load.max_size), round_no)
        history.add(upload)
        seed = f"{round_no}/{writer}/{seq}"
        seq += 1

        async def body(upload: Upload = upload, seed: str = seed) -> AsyncIterator[bytes]:
            hasher = hashlib.sha256()
            for chunk in _content(seed, upload.size):
                hasher.update(chunk)
                yield chunk
                await asyncio.sleep(0)
            upload.sha = hasher.hexdigest()

        headers = {"Content-Length": str(upload.size)} if seq % 2 else {}
        try:
            response = await client.put("/api/fs/content", params={"path": path},
                                        content=body(), headers=headers)
        except httpx.HTTPError:
            return  # the server is gone: this upload was not acknowledged
        if response.status_code == 429:
            history.rate_limited += 1
            await asyncio.sleep(0.05)
            continue
        assert response.status_code == 200, (response.status_code, response.text[:300])
        result = response.json()["result"]
        assert (result["etag"], result["size"]) == (upload.sha, upload.size), (
            f"{path}: the server acknowledged other content than was sent")
        upload.acked = True
        history.acked += 1


async def _load_and_kill(server: NexusProcess, key: str, history: History, load: Load,
                         round_no: int, rng: random.Random) -> float:
    """Run the writers; SIGKILL the server at a random moment (once something was
    acknowledged). Returns the moment, in seconds after the load started."""
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=load.writers + 8,
                          max_keepalive_connections=load.writers + 8)
    async with httpx.AsyncClient(base_url=server.url, limits=limits,
                                 headers={"Authorization": f"Bearer {key}"},
                                 timeout=httpx.Timeout(300.0, connect=30.0)) as client:
        acked_before = history.acked
        tasks = [asyncio.create_task(_writer(client, history, stop, load, round_no, w,
                                             random.Random(rng.random())))
                 for w in range(load.writers)]
        started = time.monotonic()
        await asyncio.sleep(rng.uniform(*load.kill_after))
        while history.acked == acked_before and time.monotonic() - started < 120:
            await asyncio.sleep(0.05)
        moment = time.monotonic() - started
        stop.set()
        server.kill()
        await asyncio.gather(*tasks)
    return moment


# -- the checks ----------------------------------------------------------------------------


def _sha_of(admin_http: httpx.Client, path: str) -> str:
    hasher = hashlib.sha256()
    with admin_http.stream("GET", "/api/fs/content", params={"path": path}) as response:
        assert response.status_code == 200, (path, response.status_code, response.read())
        for chunk in response.iter_bytes():
            hasher.update(chunk)
    return hasher.hexdigest()


@dataclass
class Verdict:
    acked_checked: int = 0
    files_read: int = 0
    in_flight_committed: int = 0


def _verify(server: NexusProcess, admin_key: str, history: History, round_no: int,
            read_everything: bool) -> Verdict:
    verdict = Verdict()
    admin = nexus.connect(config={"url": server.url, "api_key": admin_key})
    listed = {e["path"]: e for e in admin.list(f"/tenants/{TENANT}", recursive=True)
              if e["type"] == "file"}
    # Every visible file was uploaded to, and shows a content that was sent in full.
    for path, entry in listed.items():
        assert path in history.by_path, f"{path}: a file nobody uploaded is visible"
        allowed = history.allowed(path)
        assert entry["etag"] in allowed, (
            f"{path}: visible etag {entry['etag']} is none of the contents sent for it "
            f"(allowed {allowed})")
        if entry["etag"] not in {u.sha for u in history.by_path[path] if u.acked} and any(
                u.sha == entry["etag"] and u.round == round_no
                for u in history.by_path[path]):
            verdict.in_flight_committed += 1  # committed, but the kill ate its answer
    # Every path's acknowledged state survived (absent only if never acknowledged).
    for path, uploads in history.by_path.items():
        shown = listed[path]["etag"] if path in listed else None
        assert shown in history.allowed(path), (
            f"{path}: shows {shown}, expected one of {history.allowed(path)} "
            f"(acknowledged: {[u.sha for u in uploads if u.acked]})")
        verdict.acked_checked += sum(u.acked for u in uploads)
    # Read the bytes back: the blobs hold what the rows say (partial content would not
    # hash to the etag). All of them at CI size; this round's and the hot paths at full.
    to_read = [p for p in listed if read_everything or "/hot/" in p
               or p.startswith(f"/tenants/{TENANT}/r{round_no:02d}/")]
    with httpx.Client(base_url=server.url, timeout=300,
                      headers={"Authorization": f"Bearer {admin_key}"}) as http, \
            ThreadPoolExecutor(max_workers=8) as pool:
        for path, sha in zip(to_read, pool.map(lambda p: _sha_of(http, p), to_read),
                             strict=True):
            assert sha == listed[path]["etag"], f"{path}: content does not hash to its etag"
            verdict.files_read += 1
    # Counters equal what is stored.
    usage = admin.get_tenant(TENANT)["usage"]
    stored = (sum(e["size"] for e in listed.values()), len(listed))
    assert (usage["storage_bytes"], usage["files"]) == stored, (
        f"usage counters {usage} differ from the stored files {stored}")
    admin.close()
    return verdict


def _prune(server: NexusProcess, admin_key: str, history: History, round_no: int) -> None:
    """Remove round ``round_no``'s files through the API and collect their blobs."""
    root = f"/tenants/{TENANT}/r{round_no:02d}"
    admin = nexus.connect(config={"url": server.url, "api_key": admin_key})
    if admin.exists(root):
        admin.rmdir(root, recursive=True)
    admin.close()
    for path in [p for p in history.by_path if p.startswith(root + "/")]:
        del history.by_path[path]
    args = [*NEXUS, "gc", "--grace", "0", "--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database-url", server.database_url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def _fsck(server: NexusProcess, deep: bool) -> dict:
    args = [*NEXUS, "fsck", "--json", "--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database-url", server.database_url]
    if deep:
        args.append("--deep")
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    assert done.returncode == 0 and report.get("ok"), (
        f"fsck exit {done.returncode}: {done.stdout[-3000:]} {done.stderr[-2000:]}")
    return report


# -- the test ------------------------------------------------------------------------------


def _setup_tenant(server: NexusProcess, admin_key: str) -> str:
    admin = nexus.connect(config={"url": server.url, "api_key": admin_key})
    admin.create_tenant(TENANT, plan="enterprise")  # no storage limit, a high rate limit
    key = admin._call_rpc("admin_create_key", {
        "user_id": "writer", "name": "crash writer", "subject_type": "user",
        "tenant_id": TENANT, "is_admin": False})["api_key"]
    admin.rebac_create(subject=("user", "writer"), relation="owner",
                       object=("file", f"/tenants/{TENANT}"), tenant_id=TENANT)
    admin.close()
    return str(key)


def _run(load: Load, tmp_path: Path, database_url: str | None, backend: str,
         report: Callable[[str], None]) -> None:
    seed = int(os.environ.get("NEXUS_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    began = time.monotonic()
    server = NexusProcess(data_dir, database_url, log=log, env=QUIET)
    history = History()
    rounds = checked = stored = read = committed_unacked = 0
    kills: list[float] = []
    round_times: list[float] = []
    try:
        admin_key = (data_dir / "admin.key").read_text().strip()
        key = _setup_tenant(server, admin_key)
        for round_no in range(load.rounds):
            round_began = time.monotonic()
            kills.append(asyncio.run(_load_and_kill(server, key, history, load, round_no, rng)))
            # restart on the same data
            server = NexusProcess(data_dir, database_url, log=log, env=QUIET)
            last = round_no == load.rounds - 1
            verdict = _verify(server, admin_key, history, round_no,
                              read_everything=load.deep_fsck_every_round)
            _fsck(server, deep=load.deep_fsck_every_round or last)
            if load.prune and round_no >= 1 and not last:
                _prune(server, admin_key, history, round_no - 1)
            rounds += 1
            checked += verdict.acked_checked
            stored = verdict.acked_checked
            read += verdict.files_read
            committed_unacked += verdict.in_flight_committed
            round_times.append(time.monotonic() - round_began)
    finally:
        server.stop()
        line = (f"crash consistency ({backend}): {rounds}/{load.rounds} rounds, "
                f"{load.writers} writers, ≤ {load.max_size // 1024} KiB, seed {seed}: "
                f"{history.started} uploads started, {history.acked} acknowledged, "
                f"{checked} acknowledged-upload checks over all rounds ({stored} after the "
                f"last crash), {read} files read back and hashed, {committed_unacked} "
                f"unacknowledged-but-committed uploads visible, {history.rate_limited} "
                f"rate-limited; kills at "
                f"{', '.join(f'{k:.1f}' for k in kills)} s; rounds "
                f"{', '.join(f'{t:.1f}' for t in round_times)} s; total "
                f"{time.monotonic() - began:.1f} s")
        print(line)
        report(line)
    assert rounds == load.rounds
    assert history.acked > 0
    shutil.rmtree(data_dir, ignore_errors=True)  # passed: up to GiBs of blobs need not stay


def test_kill_9_under_upload_load(tmp_path: Path, database_url: str | None, backend: str,
                                  stress_report: Callable[[str], None]) -> None:
    _run(CI, tmp_path, database_url, backend, stress_report)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_kill_9_under_upload_load_full_size(tmp_path: Path, database_url: str | None,
                                            backend: str,
                                            stress_report: Callable[[str], None]) -> None:
    rounds = int(os.environ.get("NEXUS_CRASH_ROUNDS", FULL.rounds))
    _run(dataclasses.replace(FULL, rounds=rounds), tmp_path, database_url, backend,
         stress_report)
