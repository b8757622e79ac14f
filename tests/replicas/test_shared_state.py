"""Three replicas over one database and one blob store behave as one server: what one
writes the others read at once, a quota holds to the byte however the uploads are
spread over them, and the content lives in the shared store, not on any replica's disk.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import nexus
from nexus.client import NexusClient
from nexus.tenancy import GIB, PLANS
from tests.serving import hammer, tenant_key

from .conftest import Report
from .harness import Deployment

KIB = 1024


def _owner_clients(deployment: Deployment, tenant: str, **create: object
                   ) -> list[NexusClient]:
    """One client per replica for a new tenant's owner."""
    with deployment.client(0) as admin:
        admin.create_tenant(tenant, plan="enterprise", **create)
        key = tenant_key(admin, tenant, "owner", owner=True)
    return [deployment.client(i, key) for i in range(len(deployment.replicas))]


def test_a_write_on_one_replica_reads_on_the_others_at_once(deployment: Deployment) -> None:
    a, b, c = _owner_clients(deployment, "shared")
    try:
        for n in range(20):
            path = f"/tenants/shared/docs/n{n}.txt"
            data = secrets.token_bytes(64) * (n + 1)
            a.write(path, data)
            # No waiting: the metadata is in the shared database once the write returns.
            assert b.read(path) == data and c.read(path) == data, path
            assert b.stat(path)["size"] == len(data)
            b.delete(path)
            assert not a.exists(path) and not c.exists(path), path
            with pytest.raises(nexus.NexusFileNotFoundError):
                a.read(path)
        c.write("/tenants/shared/docs/last.txt", b"from c")
        assert [e["name"] for e in a.list("/tenants/shared/docs")] == ["last.txt"]
    finally:
        for client in (a, b, c):
            client.close()


def test_a_quota_holds_exactly_across_replicas(deployment: Deployment) -> None:
    quota, size, uploads = 1024 * KIB, 32 * KIB, 60
    fit = quota // size
    clients = _owner_clients(deployment, "quota", max_storage_gb=quota / GIB)
    accepted: list[str] = []
    refused: list[tuple[str, nexus.QuotaExceededError]] = []
    unexpected: list[tuple[str, BaseException]] = []
    lock = threading.Lock()
    replicas = itertools.cycle(clients)

    def upload(i: int, client: NexusClient) -> None:
        path = f"/tenants/quota/u{i:03d}.bin"
        # Half of them streamed: a stream skips the advisory precheck and meets the
        # quota only at commit, the other half meets it at both.
        data = i.to_bytes(4, "big") * (size // 4)
        try:
            client.write(path, iter([data[: size // 2], data[size // 2:]]) if i % 2 else data)
        except nexus.QuotaExceededError as exc:
            with lock:
                refused.append((path, exc))
        except Exception as exc:  # noqa: BLE001 - asserted on below
            with lock:
                unexpected.append((path, exc))
        else:
            with lock:
                accepted.append(path)

    try:
        with ThreadPoolExecutor(18) as pool:
            for future in [pool.submit(upload, i, next(replicas)) for i in range(uploads)]:
                future.result()
        with deployment.client(1) as admin:
            usage = admin.get_usage("quota")["usage"]
        stored = [e for e in clients[2].list("/tenants/quota") if e["type"] == "file"]
    finally:
        for client in clients:
            client.close()
    assert not unexpected, unexpected[:3]
    assert len(accepted) == fit, (f"{len(accepted)} of {uploads} accepted, {fit} fit in "
                                  f"{quota} bytes")
    assert len(refused) == uploads - fit
    for path, exc in refused:
        assert exc.details["resource"] == "storage" and exc.details["limit"] == quota, path
    assert usage["storage_bytes"] == len(accepted) * size <= quota
    assert sorted(e["path"] for e in stored) == sorted(accepted)
    assert sum(e["size"] for e in stored) == usage["storage_bytes"]


def test_content_is_in_the_shared_store_and_on_no_replica_disk(deployment: Deployment) -> None:
    a, b, c = _owner_clients(deployment, "where")
    marker = secrets.token_hex(16).encode()  # found in no file by chance
    contents = [marker + secrets.token_bytes(96 * KIB) for _ in range(6)]
    try:
        for n, (client, data) in enumerate(zip(itertools.cycle((a, b, c)), contents,
                                               strict=False)):
            client.write(f"/tenants/where/f{n}.bin", data)
        for n, data in enumerate(contents):
            assert c.read(f"/tenants/where/f{n}.bin") == data
    finally:
        for client in (a, b, c):
            client.close()
    store = deployment.blobs.open()
    held = {digest for namespace in store.namespaces() for digest, _ in store.digests(namespace)}
    missing = [n for n, data in enumerate(contents)
               if hashlib.sha256(data).hexdigest() not in held]
    assert not missing, f"files {missing} are not in the shared {deployment.blobs.kind} store"
    for replica in deployment.replicas:
        files = [p for p in replica.data_dir.rglob("*") if p.is_file()]
        holding = [p for p in files if marker in p.read_bytes()]
        assert not holding, f"content on a replica's own disk: {holding}"
        big = [(p.relative_to(replica.data_dir), p.stat().st_size) for p in files
               if p.stat().st_size > 16 * KIB]
        assert not big, f"{replica.data_dir} holds more than identity files: {big}"
        assert not (replica.data_dir / "blobs").exists() or not any(
            Path(replica.data_dir / "blobs").rglob("*")), replica.data_dir


def test_a_rate_limit_holds_across_replicas(deployment: Deployment,
                                            propagation_report: Report) -> None:
    """A free tenant (20 requests/s, burst 40) hammering all three replicas at once gets
    one plan's worth, not three, and every admitted request is billed exactly once."""
    plan = PLANS["free"]
    with deployment.client(0) as admin:
        admin.create_tenant("ratecap", plan="free")
        key = tenant_key(admin, "ratecap", "owner", owner=True)
    clients = [deployment.client(i % 3, key) for i in range(6)]
    started = time.monotonic()
    admitted, refused = hammer(clients, lambda c: c.exists("/tenants/ratecap/shared"), 3.0)
    elapsed = time.monotonic() - started
    for client in clients:
        client.close()
    allowed = plan.burst + plan.rate_per_second * elapsed
    propagation_report(f"free plan over 3 replicas [{deployment.blobs.kind}]: {admitted} "
                       f"admitted of {allowed:.0f} allowed ({admitted / allowed:.3f}x), "
                       f"{refused} refused, in {elapsed:.1f} s")
    assert refused > admitted, "the clients did not push past the rate"
    # One plan's worth within 10 % (and never the three plans' worth of three buckets).
    assert 0.9 * allowed <= admitted <= 1.1 * allowed, (admitted, allowed, elapsed)
    with deployment.client(1) as admin:
        assert admin.get_usage("ratecap")["usage"]["api_calls"] == admitted
