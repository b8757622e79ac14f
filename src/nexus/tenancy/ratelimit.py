"""Per-tenant token buckets, so one noisy tenant cannot starve the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Limiter", "RateLimiter", "tokens_needed"]


class Limiter(Protocol):
    """What admission asks of a rate limiter: ``admit(key, rate, burst, cost, paid=,
    calls=)`` → seconds to wait (0.0: admitted, ``cost`` tokens taken and ``calls``
    requests counted). :class:`RateLimiter` is one process's buckets;
    :class:`nexus.service.rate_limits.SharedRateLimiter` is every process's."""

    def admit(self, key: str, rate: float, burst: int, cost: float = 1.0, *,
              paid: float = 0.0, calls: int = 0) -> float: ...


def tokens_needed(cost: float, burst: float, paid: float = 0.0) -> float:
    """What the bucket must hold to admit ``cost`` tokens of which ``paid`` were taken by
    the same call already: what a full bucket could pay, and at least one token for a new
    call (so a zero burst admits nothing)."""
    need = min(cost, float(burst) - paid)
    if not paid:
        need = max(need, min(cost, 1.0))
    return need


class RateLimiter:
    """``admit(key, rate, burst, cost=1)`` → seconds to wait (0.0 when the request may
    proceed and its ``cost`` in tokens was taken).

    A call worth many requests (a batch of N items) costs N tokens. It is admitted when
    the bucket holds what a full bucket could pay, ``min(cost, burst - paid)`` (``paid``:
    tokens of the same call already taken, e.g. by its admission): a cost above the burst
    needs a full bucket and leaves it in debt (negative), which the refill repays before
    the key's next request is admitted. So every batch the server allows stays possible on
    every plan, and the sustained rate is still ``rate`` items per second. A refused call
    takes nothing.

    In-process: this process's buckets only, and it counts no calls — the server uses
    :class:`~nexus.service.rate_limits.SharedRateLimiter`, which applies the same rule to
    buckets every process shares; this one is the rule on its own, for tests and tools.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, rate: float, burst: int, cost: float = 1.0, *,
              paid: float = 0.0, calls: int = 0) -> float:
        now = self._clock()
        need = tokens_needed(cost, burst, paid)
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= need - 1e-6:  # tolerate float error in the refill arithmetic
                tokens = max(tokens, need)
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (need - tokens) / rate if rate > 0 else 60.0
