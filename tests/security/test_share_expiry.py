"""Share expiry and revocation take effect on time, under load, against a real ``nexus serve``.

acme shares ``FILES`` files with each of ``TARGETS`` tenants (``FILES × TARGETS`` shares),
each share with its own expiry (``LEAD`` + a random part of ``SPREAD`` seconds after it is
created), and revokes ``REVOKED`` of them at random instants before they expire. Reader
threads — keys of the target tenants — poll every share through its live reference path
(``/tenants/<target>/shared/from-acme/<name>``) and through the source path, from the
moment it is created until more than a second after it ended.

Asserted for every share:

- every read that completed before the share ended (expiry, or the start of its
  revocation) succeeded and returned the file's bytes; at least 99 % of the shares had
  such a read (on a busy machine a share can end before its first read completes), so
  nothing passes vacuously;
- 100 % of the reads attempted more than 1 s after the share ended (its expiry instant,
  or the return of ``revoke_share``) were refused — ``NexusPermissionError`` (or, for the
  reference path, which no longer resolves, ``NexusFileNotFoundError``); at least one
  such read was made for every share.

Reported: reads, refusals, the worst lag (the latest start of a successful read after the
share ended — the docs promise 0 in the process that revoked, and "at its instant" for
expiry) and the worst delay between the end of a share and its first observed refusal
(which includes the polling interval). The server runs as one process here; in
production other processes see a revocation within about a second (the revision TTL).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

import nexus
from nexus.client import NexusClient
from tests.serving import NexusProcess, tenant_key

GRACE = 1.0  # seconds after its end from which every read of a share must be refused
#: After a first read as soon as it exists, a share is read at these offsets (seconds)
#: from its end — the last one is a read the server must refuse. Sparse, so that
#: thousands of shares can be watched by one server on a small machine.
OFFSETS = (-0.1, 0.02, 0.1, 0.25, 0.5, GRACE + 0.02)
SOURCE = "acme"


@dataclass(frozen=True)
class Scale:
    files: int
    targets: int
    revoked: int
    lead: float  # seconds from creation to the earliest expiry
    spread: float  # expiries are spread over this many seconds after that
    readers: int
    creators: int = 4
    revokers: int = 4


# A lead of 4 s: each share's first read must complete before it can expire, and on a
# busy 2-core machine (the full suite beside other work) reads were seen taking 1.6 s.
CI = Scale(files=10, targets=10, revoked=10, lead=4.0, spread=2.0, readers=12)
FULL = Scale(files=100, targets=10, revoked=100, lead=4.0, spread=8.0, readers=24)


@dataclass
class Read:
    start: float
    end: float
    via: str  # "alias" | "source"
    ok: bool
    error: str | None = None


@dataclass
class Share:
    index: int
    source: str
    alias: str
    target: str
    content: bytes
    delay: float  # expiry = creation + delay
    revoke_offset: float | None  # revoke at creation + this (always before the expiry)
    expires_at: float = math.inf
    created: float | None = None
    share_id: str | None = None
    revoke_started: float | None = None
    revoke_done: float | None = None
    reads: list[Read] = field(default_factory=list)
    late_reads: int = 0
    done: bool = False

    @property
    def valid_until(self) -> float:
        """Reads that complete before this must succeed."""
        return min(self.expires_at, self.revoke_started or math.inf)

    @property
    def ended(self) -> float:
        """The share is over from here: expired, or revoked (the call returned)."""
        return min(self.expires_at, self.revoke_done or math.inf)

    @property
    def first_success(self) -> float | None:
        return next((r.end for r in self.reads if r.ok), None)

    @property
    def revoke_at(self) -> float | None:
        """When the revoker may revoke: as planned, but never before a first successful
        read (so every revoked share is seen working first)."""
        first = self.first_success
        if self.revoke_offset is None or self.created is None or first is None:
            return None
        return max(self.created + self.revoke_offset, first + 0.1)

    def next_due(self) -> float:
        """When this share should be read next (``inf``: not created yet, or done)."""
        if self.created is None or self.done:
            return math.inf
        if not self.reads:
            return 0.0  # the first read, as soon as possible
        planned = self.revoke_at if self.revoke_done is None else self.revoke_done
        end = min(self.expires_at, planned or math.inf)
        last = self.reads[-1].start
        return next((end + o for o in OFFSETS if end + o > last), last)


class Clients:
    """One client per (thread, key), so no connection pool is shared between threads."""

    def __init__(self, serve: NexusProcess) -> None:
        self._serve = serve
        self._local = threading.local()
        self._all: list[NexusClient] = []
        self._lock = threading.Lock()

    def get(self, key: str | None = None) -> NexusClient:
        cache = self._local.__dict__.setdefault("clients", {})
        client = cache.get(key)
        if client is None:
            client = cache[key] = self._serve.client(key, timeout=30)
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        for client in self._all:
            client.close()


def _read(client: NexusClient, share: Share, via: str) -> None:
    path = share.alias if via == "alias" else share.source
    start = time.time()
    try:
        data = client.read(path)
    except nexus.NexusPermissionError:
        share.reads.append(Read(start, time.time(), via, False, "permission_denied"))
        return
    except nexus.NexusFileNotFoundError:
        share.reads.append(Read(start, time.time(), via, False, "not_found"))
        return
    except Exception as exc:  # noqa: BLE001 - any other outcome is a failure, kept
        share.reads.append(Read(start, time.time(), via, False,
                                f"{type(exc).__name__}: {exc}"[:300]))
        return
    end = time.time()
    assert data == share.content, (share.index, via)
    share.reads.append(Read(start, end, via, True))


def run_share_expiry(serve: NexusProcess, scale: Scale, report: Callable[[str], None],
                     backend: str) -> None:
    begun = time.perf_counter()
    rng = random.Random(6)
    admin = serve.client()
    clients = Clients(serve)
    targets = [f"t{k:02d}" for k in range(scale.targets)]
    try:
        # Enterprise plans: the readers stay far below the rate limits (500/s per tenant).
        admin.create_tenant(SOURCE, plan="enterprise")
        for target in targets:
            admin.create_tenant(target, plan="enterprise")
        keys = {t: tenant_key(admin, t, "reader") for t in targets}
        sources = [f"/tenants/{SOURCE}/shared/doc-{f:03d}.txt" for f in range(scale.files)]
        contents = [f"document {f} of {SOURCE}".encode() for f in range(scale.files)]
        for path, content in zip(sources, contents, strict=True):
            admin.write(path, content)
        shares = [Share(index=i, source=sources[f], target=t, content=contents[f],
                        alias=f"/tenants/{t}/shared/from-{SOURCE}/doc-{f:03d}.txt",
                        delay=scale.lead + rng.random() * scale.spread, revoke_offset=None)
                  for i, (f, t) in enumerate((f, t) for f in range(scale.files)
                                             for t in targets)]
        rng.shuffle(shares)  # creation order: files and targets interleaved
        for share in rng.sample(shares, scale.revoked):
            # Revoked between 0.3 s after creation and a second before expiry.
            share.revoke_offset = 0.3 + rng.random() * (share.delay - 1.3)

        stop = threading.Event()
        failures: list[BaseException] = []
        deadline = time.time() + 60 + 0.03 * len(shares) + scale.lead + scale.spread

        def check_deadline() -> None:
            if time.time() > deadline:
                raise TimeoutError(
                    f"still busy at the deadline: {sum(s.created is None for s in shares)} "
                    f"shares not created, {sum(not s.done for s in shares)} not done, "
                    f"{sum(s.revoke_offset is not None and s.revoke_done is None for s in shares)}"
                    f" revocations pending")

        def guarded(work: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    work()
                except BaseException as exc:  # noqa: BLE001 - re-raised by the test
                    failures.append(exc)
                    stop.set()
            return run

        def create(part: list[Share]) -> None:
            client = clients.get()
            for share in part:
                if stop.is_set():
                    return
                share.expires_at = time.time() + share.delay
                made = client.create_share(share.source, share.target,
                                           expires_at=share.expires_at)
                assert made["status"] == "active", made
                share.share_id = made["share_id"]
                share.created = time.time()

        def revoke(part: list[Share]) -> None:
            client = clients.get()
            pending = list(part)
            while pending and not stop.is_set():
                check_deadline()
                # A share that expired before anyone read it cannot be revoked while
                # live: give it up (the verdict counts it as unobserved).
                pending = [s for s in pending
                           if s.revoke_at is not None or time.time() < s.expires_at]
                ready = [s for s in pending if s.revoke_at is not None]
                share = min(ready, key=lambda s: s.revoke_at or 0.0, default=None)
                wait = math.inf if share is None else (share.revoke_at or 0.0) - time.time()
                if wait > 0:
                    time.sleep(min(wait, 0.01))
                    continue
                pending.remove(share)
                share.revoke_started = time.time()
                revoked = client.revoke_share(share.share_id)
                share.revoke_done = time.time()
                assert revoked["status"] == "revoked", revoked

        def poll(part: list[Share]) -> None:
            while not stop.is_set():
                if all(s.done for s in part):
                    return
                check_deadline()
                # The most urgent share: one never read (its first read has a deadline),
                # else the one due first.
                share = min(part, key=Share.next_due)
                wait = share.next_due() - time.time()
                if wait > 0:
                    time.sleep(min(wait, 0.01))  # new shares appear at any time
                    continue
                via = "alias" if len(share.reads) % 2 else "source"
                _read(clients.get(keys[share.target]), share, via)
                if share.reads[-1].start > share.ended + GRACE:
                    share.late_reads += 1
                    share.done = True

        creators = [shares[k::scale.creators] for k in range(scale.creators)]
        to_revoke = [s for s in shares if s.revoke_offset is not None]
        revokers = [to_revoke[k::scale.revokers] for k in range(scale.revokers)]
        readers = [shares[k::scale.readers] for k in range(scale.readers)]
        with ThreadPoolExecutor(max_workers=len(creators) + len(revokers) + len(readers)) as pool:
            futures = [pool.submit(guarded(lambda p=p: poll(p))) for p in readers]
            futures += [pool.submit(guarded(lambda p=p: create(p))) for p in creators]
            futures += [pool.submit(guarded(lambda p=p: revoke(p))) for p in revokers]
            for future in futures:
                future.result()
        if failures:
            raise failures[0]
    finally:
        clients.close()
        admin.close()

    # -- the verdict (counted and reported first, then asserted) ---------------------------
    reads = [r for s in shares for r in s.reads]
    odd = [(s.index, r) for s in shares for r in s.reads
           if not r.ok and r.error not in ("permission_denied", "not_found")]
    # The source path exists: a refusal there is a 403, never a 404.
    wrong_class = [(s.index, r) for s in shares for r in s.reads
                   if r.via == "source" and r.error == "not_found"]
    refused_early = [(s.index, r, s.valid_until) for s in shares for r in s.reads
                     if r.end < s.valid_until and not r.ok]
    # Shares no read completed before they ended: the machine was too slow to see them
    # live. Every other share was served (a read completed before the end and refused
    # is in refused_early). A few are tolerated, so nothing passes vacuously: ≤ 1 %.
    unobserved = [s.index for s in shares if not any(r.end < s.valid_until for r in s.reads)]
    late = [(s, r) for s in shares for r in s.reads if r.start > s.ended + GRACE]
    unwatched = [s.index for s in shares if s.late_reads == 0]
    served_late = [(s.index, s.share_id, round(r.start - s.ended, 3)) for s, r in late if r.ok]
    lags = [max([r.start - s.ended for r in s.reads if r.ok and r.start > s.ended],
                default=0.0) for s in shares]
    first_refusals = sorted(min([max(0.0, r.end - s.ended) for r in s.reads
                                 if not r.ok and r.end >= s.ended], default=math.inf)
                            for s in shares)
    revoked = [s for s in shares if s.revoke_done is not None]
    revoked_first = [s for s in revoked if (s.revoke_done or 0.0) < s.expires_at]
    expiries = sorted(s.expires_at for s in shares)
    latency = sorted(r.end - r.start for r in reads)
    report(f"share expiry [{backend}]: {len(shares)} shares ({scale.files} files x "
           f"{scale.targets} tenants, expiries over {expiries[-1] - expiries[0]:.1f}s), "
           f"{len(revoked)} revocations ({len(revoked_first)} before expiry), "
           f"{len(unobserved)} never read before they ended; reads "
           f"{len(reads)} ({sum(r.ok for r in reads)} served, "
           f"{sum(not r.ok for r in reads)} refused); {len(late)} attempted "
           f">{GRACE:.0f}s after the end, {len(late) - len(served_late)} of them refused; "
           f"max lag (last success after the end) {max(lags) * 1000:.0f} ms; first refusal "
           f"after the end: median {first_refusals[len(shares) // 2] * 1000:.0f} ms, max "
           f"{first_refusals[-1] * 1000:.0f} ms (read latency: median "
           f"{latency[len(latency) // 2] * 1000:.0f} ms, max {latency[-1] * 1000:.0f} ms); "
           f"{time.perf_counter() - begun:.1f}s")
    assert not odd, odd[:5]
    assert not wrong_class, wrong_class[:5]
    assert not refused_early, refused_early[:5]
    assert len(unobserved) <= len(shares) // 100, \
        f"{len(unobserved)} shares never read before they ended: {unobserved[:10]}"
    assert not unwatched, f"shares never read {GRACE}s after they ended: {unwatched[:10]}"
    assert len(revoked) >= scale.revoked - len(unobserved)
    assert not served_late, f"reads served more than {GRACE}s after the share ended: " \
                            f"{served_late[:5]}"


def test_share_expiry_and_revocation_ci_size(serve: NexusProcess, backend: str,
                                             stress_report: Callable[[str], None]) -> None:
    run_share_expiry(serve, CI, stress_report, backend)


@pytest.mark.slow
def test_share_expiry_and_revocation_full_size(serve: NexusProcess, backend: str,
                                               stress_report: Callable[[str], None]) -> None:
    run_share_expiry(serve, FULL, stress_report, backend)
