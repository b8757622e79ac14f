"""Per-tenant token buckets, so one noisy tenant cannot starve the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


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

    In-process: each server process enforces its own buckets (documented; a deployment
    of N processes behind a balancer admits up to N × the rate).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, rate: float, burst: int, cost: float = 1.0, *,
              paid: float = 0.0) -> float:
        now = self._clock()
        need = min(cost, float(burst) - paid)
        if not paid:  # a new call needs a token of its own, even from a zero burst
            need = max(need, min(cost, 1.0))
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= need - 1e-6:  # tolerate float error in the refill arithmetic
                tokens = max(tokens, need)
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (need - tokens) / rate if rate > 0 else 60.0
