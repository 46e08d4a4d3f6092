"""Per-client request rate limits: a token bucket per API client, in each replica.

A client may send ``rate_limit_per_minute`` requests a minute (its own setting, or the
platform default), with bursts up to that many. Over the limit it gets 429 with
``Retry-After`` (whole seconds until a request will be allowed again),
``X-RateLimit-Limit`` and ``X-RateLimit-Remaining: 0``. A change to a client's limit applies
from its next request, because the limit is read with the principal's live state.

Each replica keeps its own buckets, so with N replicas behind a balancer a client's ceiling is
up to N times its limit; size the limit per replica. Buckets are keyed by ``client_id`` and
the least recently used are forgotten beyond ``max_clients`` (a forgotten bucket starts full).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.core.problems import Problem
from app.identity.callers import Principal
from app.identity.models import PrincipalKind


@dataclass
class _Bucket:
    tokens: float
    updated: float


def rate_limited(retry_after: int, limit: int) -> Problem:
    return Problem(429, "rate-limited", "Vượt quá giới hạn tần suất", "Too many requests",
                   detail=f"This client may send {limit} requests a minute; retry in "
                          f"{retry_after} s.",
                   headers={"Retry-After": str(retry_after), "X-RateLimit-Limit": str(limit),
                            "X-RateLimit-Remaining": "0"})


class RateLimiter:
    def __init__(self, default_per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000) -> None:
        self.default = default_per_minute
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, principal: Principal) -> None:
        """Take one token for an API client's request, or raise 429. Users are not limited
        here: they are people at a screen, and their sign-in is throttled by lockout."""
        if principal.kind != PrincipalKind.CLIENT:
            return
        limit = principal.rate_limit_per_minute or self.default
        if limit <= 0:
            return
        now = self.clock()
        bucket = self._buckets.get(principal.client_id)
        if bucket is None:
            bucket = self._buckets[principal.client_id] = _Bucket(float(limit), now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(principal.client_id)
            elapsed = max(0.0, now - bucket.updated)  # a clock that steps back refills nothing
            bucket.tokens = min(float(limit), bucket.tokens + elapsed * limit / 60)
            bucket.updated = max(bucket.updated, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        retry_after = max(1, math.ceil((1 - bucket.tokens) * 60 / limit))
        raise rate_limited(retry_after, limit)
