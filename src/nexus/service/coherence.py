"""Cache coherence across the processes of one deployment.

Each process caches tenant state (:class:`~nexus.service.tenant_state.TenantStates`) and
tuple revisions (:class:`~nexus.service.permissions.RevisionTracker`, which the check
cache and the model cache are keyed by). A change anywhere publishes an event in its own
transaction (:mod:`nexus.store.changes`); here every process receives those events and
makes its caches forget what they name:

- PostgreSQL (:class:`NotifiedCoherence`): a daemon thread LISTENs on one dedicated
  connection; a change takes effect on every replica a few milliseconds after its commit.
  When that connection fails the thread reconnects with back-off and, once listening
  again, makes every cache forget everything (events sent meanwhile are lost with the
  connection). While it is down the caches' own time-to-live (1 s) bounds staleness.
- SQLite (:class:`PolledCoherence`): other processes on the same database file
  (``--workers``, an embedded client beside the server) are seen by reading
  ``cache_events`` at most every ``interval`` seconds (default 20 ms), on the request
  path, when a cache is consulted — one indexed read, no thread.

Receivers apply their own process's events too: forgetting twice costs one re-read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from nexus.store import Database
from nexus.store.changes import CHANNEL, ChangeLog, parse_payload

__all__ = ["Coherence", "CoherentCache", "NotifiedCoherence", "PolledCoherence",
           "coherence_for"]

logger = logging.getLogger("nexus.coherence")

#: ``(kind, tenant_id)`` → forget what is cached for it.
Listener = Callable[[str, str], None]
#: Forget everything (events may have been missed).
Reset = Callable[[], None]


class Coherence:
    """Fans events out to the caches that subscribed. The base class receives nothing
    (one process on a private store, and tests that drive :meth:`deliver` directly)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._resets: list[Reset] = []
        #: Events applied and full resets since start (read by /metrics and tests).
        self.events = 0
        self.resets = 0

    def subscribe(self, on_event: Listener, on_reset: Reset) -> None:
        self._listeners.append(on_event)
        self._resets.append(on_reset)

    def sync(self) -> None:
        """Apply what other processes changed, where that needs the caller's thread (a
        cache calls this before it trusts an entry)."""

    @property
    def connected(self) -> bool:
        """Whether changes from other processes arrive now (else caches' ttl bounds them)."""
        return True

    def start(self) -> None:
        """Begin receiving (a no-op unless a subclass listens)."""

    def close(self) -> None:
        """Stop receiving."""

    def deliver(self, kind: str, tenant_id: str) -> None:
        self.events += 1
        for listener in self._listeners:
            listener(kind, tenant_id)

    def reset(self) -> None:
        self.resets += 1
        for reset in self._resets:
            reset()


K = TypeVar("K")
V = TypeVar("V")


class CoherentCache(Generic[K, V]):
    """A per-process cache of database facts, kept coherent: entries live ``ttl``
    seconds at most, and :meth:`forget` (this process's change, or another's event) drops
    one at once. A load that read the database before a forget never stores its older
    value after it: every forget bumps a generation, and a load stores only if the
    generation it started under is still current. ``keep_missing`` caches "absent" too
    (``None``); ``size`` bounds the entries (past it the cache starts over)."""

    def __init__(self, coherence: Coherence, *, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, keep_missing: bool = False,
                 size: int = 10_000) -> None:
        self._coherence = coherence
        self._ttl = ttl
        self._clock = clock
        self._keep_missing = keep_missing
        self._size = size
        self._entries: dict[K, tuple[V | None, float]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[K], V | None], *, fresh: bool = False) -> V | None:
        """The cached value of ``key``, else ``load(key)`` (stored unless a forget came
        between); ``fresh`` loads even within the ttl."""
        self._coherence.sync()
        now = self._clock()
        cached = self._entries.get(key)
        if not fresh and cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        generation = self._generation
        value = load(key)
        if value is not None or self._keep_missing:
            with self._lock:
                if generation == self._generation:
                    if len(self._entries) >= self._size:
                        self._entries.clear()
                    self._entries[key] = (value, now)
        return value

    def forget(self, key: K) -> None:
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


class PolledCoherence(Coherence):
    """SQLite: read ``cache_events`` past the last seen sequence number, at most every
    ``interval`` seconds, from whichever request thread gets there first."""

    def __init__(self, db: Database, *, interval: float = 0.02, batch: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._db = db
        self._interval = interval
        self._batch = batch
        self._clock = clock
        self._seen: int | None = None
        self._due = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._db.read() as conn:
            self._seen = ChangeLog(conn).latest()
        self._due = self._clock() + self._interval

    def sync(self) -> None:
        if self._clock() < self._due or not self._lock.acquire(blocking=False):
            return  # polled recently, or another thread is polling right now
        try:
            self._poll()
        finally:
            self._lock.release()

    def _poll(self) -> None:
        with self._db.read() as conn:
            log = ChangeLog(conn)
            if self._seen is None:
                self._seen = log.latest()
            events = log.since(self._seen, self._batch)
            if len(events) == self._batch or (events and events[0].seq != self._seen + 1):
                # Too far behind, or the rows in between were pruned: start afresh.
                self._seen = log.latest()
                self._due = self._clock() + self._interval
                self.reset()
                return
        for event in events:
            self.deliver(event.kind, event.tenant_id)
        if events:
            self._seen = events[-1].seq
        self._due = self._clock() + self._interval


#: The payload that wakes a closing listener (``parse_payload`` rejects it).
_WAKE = "wake:"


class NotifiedCoherence(Coherence):
    """PostgreSQL: a daemon thread LISTENs on its own connection."""

    def __init__(self, db: Database, *, ping_every: float = 5.0,
                 max_backoff: float = 5.0) -> None:
        super().__init__()
        self._dsn = db.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._ping_every = ping_every
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: object | None = None

    @property
    def connected(self) -> bool:
        return self._listening.is_set()

    def start(self, *, wait: float = 5.0) -> None:
        """Start listening; waits up to ``wait`` seconds for the first LISTEN, so a
        server that says it is up is already coherent."""
        self._thread = threading.Thread(target=self._run, name="nexus-coherence", daemon=True)
        self._thread.start()
        self._listening.wait(wait)

    def close(self) -> None:
        self._stop.set()
        if self._thread is None or not self._thread.is_alive():
            return
        # A waiting notifies() wakes only for a notification (cancelling the connection
        # does not reach it): send one, which no receiver takes for a change. Without the
        # database the thread ends at its next ping; it is a daemon either way.
        try:
            import psycopg

            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, _WAKE))
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self._thread.join(timeout=2)

    def _run(self) -> None:
        import psycopg

        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Whatever was cached before this LISTEN may have missed events.
                    self.reset()
                    self._listening.set()
                    backoff = 0.1
                    self._receive(conn)
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                if self._stop.is_set():
                    break
                logger.warning("change listener lost its database connection (%s); caches "
                               "fall back to their 1 s ttl until it reconnects",
                               type(exc).__name__)
            finally:
                self._conn = None
                self._listening.clear()
            self._stop.wait(backoff)
            backoff = min(self._max_backoff, backoff * 2)

    def _receive(self, conn: object) -> None:
        while not self._stop.is_set():
            for notify in conn.notifies(timeout=self._ping_every):  # type: ignore[attr-defined]
                if self._stop.is_set():
                    return
                parsed = parse_payload(notify.payload)
                if parsed is not None:
                    self.deliver(*parsed)
            if not self._stop.is_set():
                conn.execute("SELECT 1")  # type: ignore[attr-defined]  # a dead link raises


def coherence_for(db: Database) -> Coherence:
    """The receiver for ``db``'s dialect (not started)."""
    if db.dialect == "postgresql":
        return NotifiedCoherence(db)
    return PolledCoherence(db)
