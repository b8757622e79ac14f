"""The storage quota holds under a concurrent upload race against a real ``nexus serve``.

A tenant gets a storage override of ``QUOTA`` bytes; many client threads upload
``SIZE``-byte files to distinct new paths (half as bytes, half as streams — a stream
skips the advisory precheck and is refused at commit) while others overwrite and copy
the accepted files, and a sampler watches the tenant's usage the whole time, both over
the wire (``get_usage``) and straight from the metadata database (the counter and the
sum of stored sizes read in one snapshot).

Expected, exactly: ⌊QUOTA / SIZE⌋ uploads accepted, every other one refused with
``QuotaExceededError`` (``quota_exceeded``, HTTP 413, resource ``storage``) leaving no file,
an overshoot of 0 bytes at every sample, and the counter equal to the sum of stored sizes
at every sample and at the end. Then, with the quota full, growth of any kind is refused;
shrinking overwrites and deletes free room that concurrent copies and uploads fill to
the byte.

CI size (not slow) scales the full scenario (1 GiB quota, 8 MiB files, 500 uploads) down
by 128 in size and 4 in count, keeping ⌊QUOTA / SIZE⌋ = 128 / 4 = 32 accepted.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import nexus
from nexus.client import NexusClient
from nexus.store import Database
from nexus.store.schema import files as files_table
from nexus.store.schema import tenant_usage
from nexus.tenancy import GIB
from tests.serving import NexusProcess, tenant_key

KIB, MIB = 1024, 1024 * 1024


class PerThread:
    """One client per thread (each with its own connection pool), all closed at the end."""

    def __init__(self, make: Callable[[], NexusClient]) -> None:
        self._make = make
        self._local = threading.local()
        self._all: list[NexusClient] = []
        self._lock = threading.Lock()

    def get(self) -> NexusClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make()
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        for client in self._all:
            client.close()


# -- the sampler --------------------------------------------------------------------------


@dataclass
class UsageSampler:
    """Polls the tenant's usage until stopped: ``get_usage`` over HTTP and, in one
    database snapshot, the counter and the sum of the stored file sizes."""

    admin: NexusClient
    db: Database
    tenant: str
    quota: int
    wire_samples: int = 0
    db_samples: int = 0
    max_used: int = 0
    max_overshoot: int = 0
    drifts: list[tuple[int, int]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-sampler", daemon=True)
        stored = select(func.coalesce(func.sum(files_table.c.size), 0)).where(
            files_table.c.tenant_id == self.tenant, files_table.c.kind == "file"
        ).scalar_subquery()
        counter = select(tenant_usage.c.storage_bytes).where(
            tenant_usage.c.tenant_id == self.tenant).scalar_subquery()
        self._snapshot = select(counter, stored)  # one statement: one snapshot

    def __enter__(self) -> UsageSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _observe(self, used: int) -> None:
        self.max_used = max(self.max_used, used)
        self.max_overshoot = max(self.max_overshoot, used - self.quota)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                usage = self.admin.get_usage(self.tenant)["usage"]
                self._observe(int(usage["storage_bytes"]))
                self.wire_samples += 1
                with self.db.read() as conn:
                    counter, stored = conn.execute(self._snapshot).one()
                self._observe(int(counter))
                self._observe(int(stored))
                if int(counter) != int(stored):
                    self.drifts.append((int(counter), int(stored)))
                self.db_samples += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)
                return
            time.sleep(0.002)

    @property
    def samples(self) -> int:
        return self.wire_samples + self.db_samples


# -- the race -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    quota: int
    size: int
    uploads: int
    overwrites: int
    copies: int
    threads: int


CI = Scale(quota=2 * MIB, size=64 * KIB, uploads=125, overwrites=25, copies=25, threads=12)
FULL = Scale(quota=1 * GIB, size=8 * MIB, uploads=500, overwrites=100, copies=100, threads=32)


def _content(tag: int, size: int) -> bytes:
    """``size`` bytes unique to ``tag`` (its first 8 bytes), so reads can tell who wrote."""
    return tag.to_bytes(8, "big") + bytes([tag % 251]) * (size - 8)


def _as_upload(data: bytes, stream: bool) -> bytes | Iterator[bytes]:
    # An iterator goes through PUT /api/fs/content and skips the advisory precheck.
    if not stream:
        return data
    half = len(data) // 2
    return iter([data[:half], data[half:]])


@dataclass
class Outcome:
    accepted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[tuple[str, nexus.QuotaExceededError]] = field(default_factory=list)
    unexpected: list[tuple[str, BaseException]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, label: str, call: Callable[[], Any]) -> bool:
        try:
            call()
        except nexus.QuotaExceededError as exc:
            with self.lock:
                self.refused.append(label)
                self.errors.append((label, exc))
            return False
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            with self.lock:
                self.unexpected.append((label, exc))
            return False
        with self.lock:
            self.accepted.append(label)
        return True


def _assert_storage_refusals(outcome: Outcome, quota: int) -> None:
    for label, exc in outcome.errors:
        assert type(exc) is nexus.QuotaExceededError, label
        assert exc.code == "quota_exceeded" and exc.http_status == 413, label
        assert exc.details["resource"] == "storage", (label, exc.details)
        assert exc.details["limit"] == quota, (label, exc.details)
        assert exc.details["current"] + exc.details["requested"] > quota, (label, exc.details)


def run_quota_race(serve: NexusProcess, scale: Scale, report: Callable[[str], None],
                   backend: str) -> None:
    started = time.perf_counter()
    q, s = scale.quota, scale.size
    fit = q // s
    assert scale.uploads > fit
    tenant = "acme"
    admin = serve.client()
    # Enterprise: no file limit and a rate limit (500/s, burst 1,000) the run stays under;
    # the storage limit is the override.
    admin.create_tenant(tenant, plan="enterprise", max_storage_gb=q / GIB)
    limits = admin.get_usage(tenant)["limits"]
    assert limits["max_storage_gb"] * GIB == q and limits["max_files"] is None
    key = tenant_key(admin, tenant, "uploader", owner=True)
    clients = PerThread(lambda: serve.client(key))
    root = f"/tenants/{tenant}/uploads"
    db = Database(serve.database_url) if serve.database_url \
        else Database.for_data_dir(serve.data_dir)
    sampler_admin = serve.client()
    rng = random.Random(9)
    tags = itertools.count(10_000)
    expected_size: dict[str, int] = {}  # what each stored file must measure at the end
    touched: set[str] = set()  # files the churn rewrote (their first bytes changed)

    try:
        with UsageSampler(sampler_admin, db, tenant, q) as sampler:
            # 1. The race: uploads to distinct new paths, while accepted files are
            #    overwritten in place and copied onto each other (both size-neutral, so
            #    they must all succeed and leave exactly ⌊q/s⌋ slots to the uploads).
            uploads, churn = Outcome(), Outcome()
            accepted_lock = threading.Lock()
            accepted: list[str] = []

            def upload(i: int) -> None:
                path = f"{root}/u{i:04d}.bin"
                data = _content(i, s)
                if uploads.run(path, lambda: clients.get().write(path, _as_upload(data, i % 2))):
                    with accepted_lock:
                        accepted.append(path)

            def pick(n: int) -> list[str]:
                deadline = time.time() + 60
                while time.time() < deadline:
                    with accepted_lock:
                        if len(accepted) >= n:
                            return rng.sample(accepted, n)
                    time.sleep(0.005)
                raise AssertionError("no accepted uploads to churn")

            def overwrite(j: int) -> None:
                (path,) = pick(1)
                touched.add(path)
                data = _content(next(tags), s)
                churn.run(f"overwrite {path}",
                          lambda: clients.get().write(path, _as_upload(data, j % 2)))

            def copy_over(_j: int) -> None:
                src, dst = pick(2)
                touched.add(dst)
                churn.run(f"copy {src} -> {dst}",
                          lambda: clients.get().copy(src, dst, overwrite=True))

            jobs: list[Callable[[], None]] = [lambda i=i: upload(i) for i in range(scale.uploads)]
            extra = [lambda j=j: overwrite(j) for j in range(scale.overwrites)] + \
                    [lambda j=j: copy_over(j) for j in range(scale.copies)]
            for j, job in enumerate(extra):  # spread the churn through the uploads
                jobs.insert(rng.randrange(min(len(jobs), 2 * fit + j), len(jobs) + 1), job)
            with ThreadPoolExecutor(max_workers=scale.threads) as pool:
                list(pool.map(lambda job: job(), jobs))

            assert not uploads.unexpected, uploads.unexpected[:3]
            assert not churn.unexpected, churn.unexpected[:3]
            assert not churn.refused, churn.refused[:3]
            assert len(uploads.accepted) == fit, (len(uploads.accepted), fit)
            assert len(uploads.refused) == scale.uploads - fit
            assert len(churn.accepted) == scale.overwrites + scale.copies
            _assert_storage_refusals(uploads, q)
            phase1 = {"accepted": len(uploads.accepted), "refused": len(uploads.refused),
                      "churn": len(churn.accepted)}
            expected_size.update(dict.fromkeys(uploads.accepted, s))

            # 2. Full to the byte: every kind of growth is refused and changes nothing.
            full = Outcome()
            donors = sorted(uploads.accepted)
            before = {p: clients.get().stat(p) for p in donors[:8]}
            grow = [lambda p=p, k=k: full.run(f"grow {p}", lambda: clients.get().write(
                p, _as_upload(_content(next(tags), s + 1), k % 2)))
                for k, p in enumerate(donors[:8])]
            copy_new = [lambda k=k: full.run(f"{root}/c-full-{k}.bin", lambda: clients.get().copy(
                donors[k], f"{root}/c-full-{k}.bin")) for k in range(8)]
            tiny = [lambda k=k: full.run(f"{root}/t-full-{k}.bin", lambda: clients.get().write(
                f"{root}/t-full-{k}.bin", _as_upload(b"x" * (k + 1), k % 2))) for k in range(8)]
            with ThreadPoolExecutor(max_workers=scale.threads) as pool:
                list(pool.map(lambda job: job(), grow + copy_new + tiny))
            assert not full.unexpected, full.unexpected[:3]
            assert not full.accepted, full.accepted
            _assert_storage_refusals(full, q)
            for path, meta in before.items():
                after = clients.get().stat(path)
                assert (after["size"], after["etag"], after["version"]) == \
                    (meta["size"], meta["etag"], meta["version"]), path
            # The wire form of the refusal, as any HTTP client sees it.
            raw = httpx.put(f"{serve.url}/api/fs/content", params={"path": f"{root}/raw.bin"},
                            content=b"r" * s, headers={"Authorization": f"Bearer {key}"})
            assert raw.status_code == 413, raw.text
            assert raw.json()["error"]["data"]["code"] == "quota_exceeded"
            assert raw.json()["error"]["data"]["details"]["resource"] == "storage"

            # 3. Free room concurrently: three files shrink to half size (one by copying a
            #    half-size file over it), two are deleted — 3.5 slots in all.
            victims = donors[8:13]
            shrink, delete = victims[:3], victims[3:]
            frees = Outcome()
            half = s // 2
            frees_jobs = [
                lambda: frees.run("shrink0", lambda: clients.get().write(
                    shrink[0], _content(next(tags), half))),
                lambda: frees.run("shrink1", lambda: clients.get().write(
                    shrink[1], _as_upload(_content(next(tags), half), True))),
                lambda: frees.run("delete0", lambda: clients.get().delete(delete[0])),
                lambda: frees.run("delete1", lambda: clients.get().delete(delete[1])),
            ]
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda job: job(), frees_jobs))
            assert frees.run("shrink2", lambda: clients.get().copy(shrink[0], shrink[2],
                                                                   overwrite=True))
            assert not frees.unexpected and not frees.refused, (frees.unexpected, frees.refused)
            for p in shrink:
                expected_size[p] = half
            for p in delete:
                del expected_size[p]
            room = q - sum(expected_size.values())
            assert room == 3 * half + 2 * s

            # 4. Copies to new paths race for that room: exactly ⌊room / s⌋ fit.
            refill = Outcome()
            refill_jobs = [lambda k=k: refill.run(f"{root}/c-{k}.bin", lambda: clients.get().copy(
                donors[20 + k], f"{root}/c-{k}.bin")) for k in range(8)]
            # 5. ... and then half-size uploads race for what is left: exactly one fits.
            last = Outcome()
            last_jobs = [lambda k=k: last.run(f"{root}/h-{k}.bin", lambda: clients.get().write(
                f"{root}/h-{k}.bin", _as_upload(_content(next(tags), half), k % 2)))
                for k in range(8)]
            for outcome, batch, fits, each in ((refill, refill_jobs, room // s, s),
                                               (last, last_jobs, 1, half)):
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(lambda job: job(), batch))
                assert not outcome.unexpected, outcome.unexpected[:3]
                assert len(outcome.accepted) == fits, (outcome.accepted, fits)
                _assert_storage_refusals(outcome, q)
                expected_size.update(dict.fromkeys(outcome.accepted, each))
            assert sum(expected_size.values()) == q  # full to the byte
            time.sleep(0.05)  # a few samples of the final state

        # Throughout: never over the quota, the counter always equal to the stored bytes.
        assert not sampler.errors, sampler.errors[:1]
        assert sampler.max_overshoot <= 0, sampler.max_overshoot
        assert not sampler.drifts, sampler.drifts[:5]
        assert sampler.wire_samples >= 10 and sampler.db_samples >= 10
        assert sampler.max_used == q

        # At the end: what is stored is what was accepted, nothing of what was refused.
        listed = {e["path"]: e["size"] for e in admin.list(f"/tenants/{tenant}", recursive=True)
                  if e["type"] == "file"}
        assert listed == expected_size
        usage = admin.get_usage(tenant)["usage"]
        assert usage["storage_bytes"] == sum(listed.values()) == q
        assert usage["files"] == len(listed)
        refused_paths = [p for o in (uploads, full, refill, last) for p in o.refused
                         if p.startswith("/")]
        for path in refused_paths:
            assert path not in listed
            assert not admin.exists(path), path
        # Contents: every upload nobody rewrote still holds its own bytes.
        for path in [p for p in donors if p in listed and p not in touched | set(shrink)]:
            head = admin.read(path, length=8)
            assert int.from_bytes(head, "big") == int(path[-8:-4]), path
        fsck = _fsck(serve)
        assert fsck.ok, fsck.problems
    finally:
        clients.close()
        sampler_admin.close()
        admin.close()
        db.dispose()
    elapsed = time.perf_counter() - started
    report(f"quota race [{backend}] quota {q} B, file {s} B: uploads accepted "
           f"{phase1['accepted']} (= {q}//{s}), refused {phase1['refused']}; "
           f"size-neutral overwrites+copies {phase1['churn']}; growth refused at full "
           f"{len(full.refused)}; refill copies {len(refill.accepted)}/"
           f"{len(refill_jobs)}, half-size {len(last.accepted)}/{len(last_jobs)}; "
           f"samples {sampler.samples} (wire {sampler.wire_samples}, db "
           f"{sampler.db_samples}); max usage {sampler.max_used}, max overshoot "
           f"{max(0, sampler.max_overshoot)} B; {elapsed:.1f}s")


def _fsck(serve: NexusProcess) -> Any:
    """The maintenance check (counters against stored files, rows against blobs), run by
    an engine of our own on the server's data."""
    from nexus.service import bootstrap

    service = bootstrap(serve.settings())
    try:
        return service.maintenance.fsck()
    finally:
        service.close()


def test_quota_race_ci_size(serve: NexusProcess, backend: str,
                            stress_report: Callable[[str], None]) -> None:
    run_quota_race(serve, CI, stress_report, backend)


@pytest.mark.slow
def test_quota_race_full_size(serve: NexusProcess, backend: str,
                              stress_report: Callable[[str], None]) -> None:
    run_quota_race(serve, FULL, stress_report, backend)

