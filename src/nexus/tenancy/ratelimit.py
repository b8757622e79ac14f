"""Per-tenant token buckets, so one noisy tenant cannot starve the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``admit(key, rate, burst)`` → seconds to wait (0.0 when the request may proceed).

    In-process: each server process enforces its own buckets (documented; a deployment
    of N processes behind a balancer admits up to N × the rate).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, rate: float, burst: int) -> float:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0 - 1e-6:  # tolerate float error in the refill arithmetic
                tokens = max(tokens, 1.0)
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate if rate > 0 else 60.0
