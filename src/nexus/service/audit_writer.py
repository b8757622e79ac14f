"""Group commit for the audit events that have nothing to be atomic with: reads and denials.

A change writes its event in its own transaction (:meth:`AuditLog.record`). A read or a
denial has no transaction of its own to join, and giving it one costs a durable commit
per request. Here such events are queued and committed together: the first event of a
batch waits at most ``delay`` seconds for company, then the whole batch is one
transaction (one fsync on SQLite, one WAL flush on PostgreSQL).

What this trades, and what it does not:

* **The crash window** is ``delay`` (plus the commit itself): a process killed with
  ``kill -9`` may lose the read and denial events of its last ``delay`` seconds. It never
  loses a change event (those are not queued), and the chains stay gapless: sequence
  numbers are taken at commit, in queue order.
* **Nothing is dropped.** The queue is bounded (``capacity``); when it is full the
  request that wants to record waits until the writer has made room (back-pressure), so
  a flood of reads slows down instead of growing memory or losing events. A failed
  commit is retried with backoff, the batch kept at the head of the queue (and split, so
  that one event the database refuses cannot hold back the others). Two exceptions, both
  logged with a count: a shutdown waits at most ``close``'s timeout (10 s) for a
  database that is down, and one event the database refuses five times while it is up
  is written to the error log instead (it would otherwise stall every read).
* **A clean shutdown flushes** (:meth:`close`, and at interpreter exit), and so does
  every audit query in this process (:meth:`flush`): a caller sees its own reads.
* An event whose tenant did not exist, or was deleted (or deleted and re-created under
  the same id) before its batch committed, goes to the system log, saying so: it must
  not start a chain for a tenant that does not exist, nor appear in a later
  incarnation's log.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from nexus import paths
from nexus.errors import UnavailableError
from nexus.store import Database
from nexus.store.audit import AuditRepository
from nexus.store.tenants import TenantRepository

__all__ = ["AuditWriter", "PendingEvent"]

log = logging.getLogger("nexus.audit")

#: The default bounded delay before a batch commits, in seconds.
DEFAULT_DELAY = 0.05
#: Events waiting at most (beyond it, recording waits: back-pressure).
DEFAULT_CAPACITY = 10_000
#: Events per transaction at most (one transaction stays short).
MAX_BATCH = 2_000
#: Seconds a shutdown waits for the database to take the queued events.
CLOSE_TIMEOUT = 10.0
#: Retry back-off after a failed batch, seconds.
MIN_BACKOFF, MAX_BACKOFF = 0.05, 5.0
#: Attempts at one event the database refuses while it is up, before it is logged and
#: dropped (a stuck event would otherwise stall every read).
POISON_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event taken at request time, appended at commit time.

    ``logs`` pairs each log with the incarnation its tenant had when the event happened
    (``None`` for the system log)."""

    logs: tuple[tuple[str, str | None], ...]
    fields: dict[str, Any]


class AuditWriter:
    """The queue and the one thread that commits it."""

    def __init__(self, db: Database, *, delay: float = DEFAULT_DELAY,
                 capacity: int = DEFAULT_CAPACITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if delay < 0 or capacity < 1:
            raise ValueError("delay must be >= 0 and capacity >= 1")
        self._db = db
        self._delay = delay
        self._capacity = capacity
        self._clock = clock
        self._queue: deque[PendingEvent] = deque()
        self._cond = threading.Condition()
        self._submitted = 0
        self._committed = 0
        self._flush_target = 0
        self._closed = False
        self._give_up_at: float | None = None
        self._thread: threading.Thread | None = None
        #: Events given up on (shutdown with the database down, or refused outright).
        self.lost = 0
        self._pid: int | None = None

    @property
    def delay(self) -> float:
        return self._delay

    @property
    def depth(self) -> int:
        """Events waiting to be committed."""
        return len(self._queue)

    def submit(self, event: PendingEvent) -> bool:
        """Queue ``event``; waits while the queue is full. ``False`` once the writer is
        closed (then the caller commits the event itself)."""
        with self._cond:
            while not self._closed and len(self._queue) >= self._capacity:
                self._cond.wait()
            if self._closed:
                return False
            self._ensure_thread()
            self._queue.append(event)
            self._submitted += 1
            # Wake the writer only when it waits for a first event or a batch is full:
            # waking it per event during its delay would cost a context switch each.
            if len(self._queue) == 1 or len(self._queue) >= MAX_BATCH:
                self._cond.notify_all()
            return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event submitted so far is committed; ``False`` on timeout."""
        with self._cond:
            target = self._submitted
            if self._committed >= target:
                return True
            self._ensure_thread()
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()  # the writer need not wait out its delay
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._committed < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Commit everything queued, then stop the thread. A database that does not take
        the events within ``timeout`` seconds loses them, and the log says how many: a
        shutdown must end."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._give_up_at = time.monotonic() + timeout
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout + MAX_BACKOFF)

    # -- the writer thread ---------------------------------------------------------------

    def _ensure_thread(self) -> None:
        # Started on first use, and again in a forked child (threads do not survive fork).
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="nexus-audit-writer",
                                        daemon=True)
        self._thread.start()
        _at_exit(self)

    def _run(self) -> None:
        backoff, size, failures = MIN_BACKOFF, MAX_BATCH, 0
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:  # closed and drained
                    return
                # Wait for company, at most the delay since this batch's first event.
                deadline = self._clock() + self._delay
                while (not self._closed and len(self._queue) < MAX_BATCH
                       and self._flush_target <= self._committed
                       and (left := deadline - self._clock()) > 0):
                    self._cond.wait(left)
                batch = [self._queue[i] for i in range(min(len(self._queue), size))]
            try:
                self._db.run(functools.partial(_append_all, batch=batch))
            except Exception as exc:  # noqa: BLE001 — the events stay queued; the cause is logged
                failures += 1
                if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
                    self._drop(len(self._queue), "the database did not take them before "
                               "shutdown")
                    return
                if len(batch) > 1:
                    size = max(1, len(batch) // 2)  # isolate an event the database refuses
                elif failures >= POISON_ATTEMPTS and not isinstance(exc, UnavailableError):
                    # One event the database keeps refusing, while it is up: keeping it
                    # would stall every read of the deployment. Its fields go to the log.
                    log.error("audit event not stored after %d attempts: %r", failures,
                              batch[0].fields)
                    self._drop(1, "refused by the database")
                    failures = 0
                    continue
                log.warning("audit batch of %d events failed (%s); retrying in %.2f s",
                            len(batch), type(exc).__name__, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff, size, failures = MIN_BACKOFF, MAX_BATCH, 0
            with self._cond:
                for _ in batch:
                    self._queue.popleft()
                self._committed += len(batch)
                self._cond.notify_all()

    def _drop(self, count: int, why: str) -> None:
        with self._cond:
            for _ in range(count):
                self._queue.popleft()
            self._committed += count  # processed: flush() must not wait for them
            self.lost += count
            self._cond.notify_all()
        log.error("%d audit events lost: %s", count, why)


def _append_all(conn: Connection, *, batch: Sequence[PendingEvent]) -> None:
    """Append the batch, each log's events in queue order, one chain advance per log."""
    tenants = TenantRepository(conn)
    alive: dict[tuple[str, str | None], bool] = {}
    by_log: dict[str, list[dict[str, Any]]] = {}
    for event in batch:
        for name, incarnation in event.logs:
            fields = event.fields
            if name != paths.SYSTEM_PARTITION:
                key = (name, incarnation)
                if key not in alive:
                    alive[key] = incarnation is not None and \
                        tenants.incarnation(name, lock=True) == incarnation
                if not alive[key]:
                    note = f"tenant {name} did not exist when this event was committed"
                    detail = fields.get("detail")
                    fields = {**fields, "detail": note if detail is None
                              else f"{detail}; {note}"}
                    name = paths.SYSTEM_PARTITION
            by_log.setdefault(name, []).append(fields)
    audit = AuditRepository(conn)
    # Sorted: concurrent writers lock the chains' heads in one order.
    for name in sorted(by_log):
        audit.append_many(name, by_log[name])


# Writers alive in this process, flushed when the interpreter exits normally (a script
# that never closes its client still keeps its reads).
_writers: weakref.WeakSet[AuditWriter] = weakref.WeakSet()
_hook_installed = False


def _at_exit(writer: AuditWriter) -> None:
    global _hook_installed
    _writers.add(writer)
    if not _hook_installed:
        _hook_installed = True
        atexit.register(_close_all)


def _close_all() -> None:
    for writer in list(_writers):
        try:
            writer.close()
        except Exception:  # noqa: BLE001 — exiting anyway; say what was lost
            log.exception("audit events could not be committed at exit")
