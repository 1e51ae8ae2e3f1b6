"""Back-pressure for one hub process: requests in flight, and each hall's item rate.

- ``InflightGate``: at most N ingest requests are worked on at once; one more is answered
  503 with Retry-After at once, before it costs a database connection or a thread.
- ``HallRateLimiter``: a token bucket per hall, in items per second; a hall above its rate
  is answered 429 with the seconds until its batch would fit.
Both run on the event loop thread (no locks needed) and use a monotonic clock. They refuse
a request before it is processed, so a refused request changes nothing and may be resent
unchanged (docs/hub-api.md, "Status codes and back-pressure").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class InflightGate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight = 0

    def try_enter(self) -> bool:
        if self.inflight >= self.limit:
            return False
        self.inflight += 1
        return True

    def leave(self) -> None:
        self.inflight -= 1


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class HallRateLimiter:
    rate_per_s: float  # 0 = unlimited
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, hall_id: str, items: int) -> int:
        """Take `items` from the hall's bucket; 0 if allowed, else seconds to wait (≥ 1)."""
        if self.rate_per_s <= 0 or items <= 0:
            return 0
        now = self.clock()
        bucket = self._buckets.get(hall_id)
        if bucket is None:
            bucket = self._buckets[hall_id] = _Bucket(float(self.burst), now)
        bucket.tokens = min(
            float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate_per_s
        )
        bucket.stamp = now
        need = min(items, self.burst)  # a batch larger than the burst is let through when full
        if bucket.tokens >= need:
            bucket.tokens -= items
            return 0
        return max(1, math.ceil((need - bucket.tokens) / self.rate_per_s))
