"""When to retry a request, and how long to wait first.

Retried: 408, 429 and 5xx answers, and connection failures. A request is retried only when
doing it twice cannot do the work twice: reads, ``PUT`` and ``DELETE``, and creates sent with
an ``Idempotency-Key`` (the service replays the first answer). Other ``POST`` requests are
retried only when the service certainly did not act: a 429 from the rate limiter, or a
connection that failed before the request was sent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (delay in seconds, or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts; exponential backoff from ``backoff`` seconds, capped at
    ``max_backoff``, with full jitter; a ``Retry-After`` longer than ``max_wait`` is not waited
    for (the error is raised instead)."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_wait: float = 60.0

    def may_repeat(self, method: str, idempotent: bool) -> bool:
        return idempotent or method.upper() in SAFE_METHODS

    def delay_after_status(self, attempt: int, method: str, idempotent: bool, status: int,
                           retry_after: str | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.max_retries or status not in RETRY_STATUSES:
            return None
        if status != 429 and not self.may_repeat(method, idempotent):
            return None
        told = retry_after_seconds(retry_after)
        if told is not None:
            return told if told <= self.max_wait else None
        return self._backoff(attempt)

    def delay_after_failure(self, attempt: int, method: str, idempotent: bool,
                            sent: bool) -> float | None:
        """Seconds to wait after a transport failure; ``sent`` is False when the connection
        failed before the request left (then even a plain POST is safe to repeat)."""
        if attempt >= self.max_retries:
            return None
        if sent and not self.may_repeat(method, idempotent):
            return None
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.backoff * (2 ** attempt))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy


NO_RETRIES = RetryPolicy(max_retries=0)
