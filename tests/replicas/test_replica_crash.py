"""``kill -9`` of one replica in the middle of 100 concurrent uploads spread over all
three loses no acknowledged upload: every one reads back, with its bytes, through the
survivors; an upload the dead replica never answered is either absent or whole; and
``nexus fsck --deep`` over the shared database and blob store reports nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import nexus
from nexus.client import NexusClient
from tests.serving import tenant_key

from .harness import Deployment, poll

KIB = 1024
UPLOADS = 100
KILL_AFTER = 30  # acknowledged uploads before the third replica is killed
VICTIM = 2


@dataclass
class Ledger:
    sent: dict[str, bytes] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    failed: dict[str, tuple[int, BaseException]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def test_kill_9_of_a_replica_loses_no_acknowledged_upload(own_deployment: Deployment) -> None:
    deployment = own_deployment
    with deployment.client(0) as admin:
        admin.create_tenant("crash", plan="enterprise")
        key = tenant_key(admin, "crash", "writer", owner=True)
    # Long timeouts: a request the victim swallowed ends as a transport error, not a hang.
    clients = [deployment.client(i, key, timeout=30) for i in range(3)]
    ledger = Ledger()
    killed = threading.Event()

    def upload(i: int) -> None:
        replica = i % 3
        path = f"/tenants/crash/u{i:03d}.bin"
        size = (16 + 7 * (i % 37)) * KIB
        data = i.to_bytes(4, "big") + secrets.token_bytes(size - 4)
        with ledger.lock:
            ledger.sent[path] = data
        body: bytes | object = data if i % 2 else iter(
            [data[j:j + 32 * KIB] for j in range(0, size, 32 * KIB)])
        try:
            answer = clients[replica].write(path, body)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - judged below by which replica it was
            with ledger.lock:
                ledger.failed[path] = (replica, exc)
            return
        assert answer["etag"] == hashlib.sha256(data).hexdigest(), path
        with ledger.lock:
            ledger.acked.add(path)
            if len(ledger.acked) >= KILL_AFTER and not killed.is_set():
                killed.set()

    def killer() -> None:
        poll(lambda: True if killed.is_set() else None, seconds=120,
             what=f"{KILL_AFTER} acknowledged uploads")
        deployment.replicas[VICTIM].kill()

    try:
        with ThreadPoolExecutor(24) as pool:
            kill = pool.submit(killer)
            started = time.monotonic()
            for future in [pool.submit(upload, i) for i in range(UPLOADS)]:
                future.result()
            kill.result()
        loaded = time.monotonic() - started
        survivors = clients[:VICTIM]
        wrong_failures = {p: (r, repr(e)) for p, (r, e) in ledger.failed.items()
                          if r != VICTIM}
        assert not wrong_failures, f"uploads through a survivor failed: {wrong_failures}"
        assert len(ledger.acked) >= KILL_AFTER
        assert any(r == VICTIM for r, _ in ledger.failed.values()) or \
            len(ledger.acked) == UPLOADS, "the kill was not during the load"
        for path in sorted(ledger.acked):
            for client in survivors:
                assert client.read(path) == ledger.sent[path], f"{path}: lost or altered"
        listed = {e["path"]: e for e in survivors[1].list("/tenants/crash")
                  if e["type"] == "file"}
        assert set(listed) >= ledger.acked
        in_flight = set(listed) - ledger.acked
        for path in in_flight:  # committed, but the kill ate the answer: whole or nothing
            assert survivors[0].read(path) == ledger.sent[path], f"{path}: partial content"
        with deployment.client(1) as admin:
            usage = admin.get_tenant("crash")["usage"]
        assert (usage["files"], usage["storage_bytes"]) == (
            len(listed), sum(e["size"] for e in listed.values()))
    finally:
        for client in clients:
            _close(client)
    done = deployment.fsck(0, "--deep")
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    assert done.returncode == 0 and report.get("ok"), (
        f"fsck exit {done.returncode} after a {loaded:.1f} s load: {done.stdout[-3000:]} "
        f"{done.stderr[-2000:]}")
    assert report["files_checked"] >= len(ledger.acked)


def _close(client: NexusClient) -> None:
    try:
        client.close()
    except nexus.NexusError:
        pass
