"""What a streaming request may hold, and for how long (issue 14, "fair serving").

An upload holds a worker thread from its first body byte to its last, so the number of
streams open at once is what decides whether the server still has threads for
``/health``, small RPC calls and other tenants. Two budgets keep that bounded:

- :class:`StreamAdmission` counts the streams each tenant (and the whole process) has
  open and refuses the one over the cap with a 429 before it costs anything more;
- :class:`BodyBudget` ends a body that stalls (no bytes for ``idle`` seconds) or
  trickles (slower on average than ``min_rate`` once the first ``idle`` seconds are
  over) with a 408, so a held slot and its thread come back.

The counts live in this process only: a cap is per ``nexus serve`` process, like the
thread pool it protects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
from starlette.requests import ClientDisconnect, Request

from nexus.errors import InvalidArgumentError, RateLimitedError, RequestTimeoutError

if TYPE_CHECKING:
    from nexus.types import Principal

__all__ = ["SYSTEM_BUCKET", "BodyBudget", "StreamAdmission", "StreamSlot", "next_chunk",
           "stream_bucket", "whole_body"]

#: The bucket of principals bound to no tenant (system administrators): capped like a
#: tenant, so one leaked administrator key cannot take the pool either.
SYSTEM_BUCKET = ""

#: A stream slot frees when some stream ends, which the server cannot predict; one
#: second keeps a well-behaved client's retry cheap without making it spin.
RETRY_AFTER_SECONDS = 1


def stream_bucket(principal: Principal) -> str:
    """The bucket whose cap ``principal``'s streams count against: its tenant."""
    return principal.tenant_id or SYSTEM_BUCKET


class StreamSlot:
    """One admitted stream; :meth:`release` (or leaving the ``with`` block) gives it back.

    Releasing twice is harmless, so every exit path may release without bookkeeping.
    """

    def __init__(self, admission: StreamAdmission, bucket: str) -> None:
        self._admission = admission
        self.bucket = bucket
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission._release(self.bucket)

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class StreamAdmission:
    """Caps on concurrent streaming requests: ``per_tenant`` for each bucket (a tenant id,
    or :data:`SYSTEM_BUCKET`) and ``total`` for the process.

    Thread-safe: uploads are admitted in a worker thread (after authentication there),
    downloads are released on the event loop.
    """

    def __init__(self, *, per_tenant: int, total: int) -> None:
        if per_tenant < 1 or total < 1:
            raise InvalidArgumentError("stream caps must be at least 1")
        self.per_tenant = per_tenant
        self.total = total
        self._open: dict[str, int] = {}
        self._total_open = 0
        self._lock = threading.Lock()

    def acquire(self, bucket: str) -> StreamSlot:
        """A slot for one more stream of ``bucket``, or :class:`RateLimitedError` (429,
        ``Retry-After``) when the bucket or the process is at its cap."""
        with self._lock:
            held = self._open.get(bucket, 0)
            if held >= self.per_tenant:
                who = f"tenant {bucket}" if bucket != SYSTEM_BUCKET else "system principals"
                raise RateLimitedError(
                    f"{who} already has {self.per_tenant} streaming requests open (the "
                    "limit per tenant); retry when one ends",
                    limit="streams_per_tenant", retry_after=RETRY_AFTER_SECONDS)
            if self._total_open >= self.total:
                # The count is the process's, not another tenant's: it tells nobody
                # who else is streaming.
                raise RateLimitedError(
                    "the server has as many streaming requests open as it serves at once; "
                    "retry later", limit="streams_total", retry_after=RETRY_AFTER_SECONDS)
            self._open[bucket] = held + 1
            self._total_open += 1
        return StreamSlot(self, bucket)

    def active(self, bucket: str | None = None) -> int:
        """Streams open now: of ``bucket``, or of every bucket."""
        with self._lock:
            return self._total_open if bucket is None else self._open.get(bucket, 0)

    def _release(self, bucket: str) -> None:
        with self._lock:
            left = self._open[bucket] - 1
            if left:
                self._open[bucket] = left
            else:
                del self._open[bucket]  # no entry per tenant that ever streamed
            self._total_open -= 1


class BodyBudget:
    """How long the next chunk of one request body may take to arrive.

    A body must bring a chunk at least every ``idle`` seconds, and — after a grace of
    ``idle`` seconds — average at least ``min_rate`` bytes per second (Apache's
    ``mod_reqtimeout`` rule: the deadline starts at ``idle`` and grows by one second per
    ``min_rate`` bytes received). The first rule ends a stalled body, the second one that
    trickles a byte just often enough to never be idle. ``min_rate=0`` keeps only the
    first. The time starts at the first :meth:`next_timeout`, when the server starts
    reading: a request that waited for a worker thread is not blamed for the wait.
    ``clock`` is monotonic seconds (injected by tests).
    """

    def __init__(self, *, idle: float, min_rate: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle = idle
        self.min_rate = min_rate
        self._clock = clock
        self._started: float | None = None
        self.received = 0
        self._rate_bound = False  # which rule the last allowance came from

    def next_timeout(self) -> float:
        """Seconds the next chunk may take; :class:`RequestTimeoutError` if none are left."""
        seconds, self._rate_bound = self._allowance()
        if seconds <= 0:
            raise self.expired()
        return seconds

    def record(self, size: int) -> None:
        """``size`` more bytes arrived."""
        self.received += size

    def expired(self) -> RequestTimeoutError:
        """The error for a chunk that did not arrive within :meth:`next_timeout`."""
        if self._rate_bound:
            return RequestTimeoutError(
                f"request body slower than {self.min_rate:g} bytes per second "
                f"({self.received} bytes in {self._elapsed():.0f} s)",
                limit="body_min_rate", received=self.received)
        return RequestTimeoutError(
            f"no request body bytes for {self.idle:g} seconds "
            f"({self.received} bytes received)", limit="body_idle_timeout",
            received=self.received)

    def _allowance(self) -> tuple[float, bool]:
        # (seconds left, whether the rate rule rather than the idle rule binds)
        now = self._clock()
        if self._started is None:
            self._started = now
        if self.min_rate <= 0:
            return self.idle, False
        deadline = self._started + self.idle + self.received / self.min_rate
        by_rate = deadline - now
        return (by_rate, True) if by_rate < self.idle else (self.idle, False)

    def _elapsed(self) -> float:
        return 0.0 if self._started is None else self._clock() - self._started


async def whole_body(request: Request, budget: BodyBudget) -> bytes:
    """All of a small request body within one allowance of ``budget`` (the idle timeout:
    a body of a few KiB that takes longer is stalled, whatever its rate)."""
    return await _within(budget, request.body)


async def next_chunk(chunks: AsyncIterator[bytes], budget: BodyBudget) -> bytes:
    """The next chunk of a request body within ``budget``; ``StopAsyncIteration`` at its end.

    Runs on the event loop, even when a worker thread asks for the chunk
    (``anyio.from_thread.run``): the loop can time the wait out and hand the thread a
    :class:`RequestTimeoutError` instead of leaving it blocked.
    """
    return await _within(budget, chunks.__anext__)


async def _within(budget: BodyBudget, receive: Callable[[], Awaitable[bytes]]) -> bytes:
    """``await receive()`` within the budget's next allowance, counted against it."""
    seconds = budget.next_timeout()
    try:
        with anyio.fail_after(seconds):
            data = await receive()
    except TimeoutError:
        raise budget.expired() from None
    except ClientDisconnect:
        # Nobody reads the answer; a client error keeps it out of the 500s.
        raise InvalidArgumentError("the client closed the connection before the body "
                                   "ended", received=budget.received) from None
    budget.record(len(data))
    return data
