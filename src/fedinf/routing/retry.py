"""Retry policy: which failures may be retried, full-jitter backoff, and the retry budget.

The budget follows Envoy's: retries (and hedges) *in flight* may be at most ``budget_ratio`` of the requests in
flight, or ``budget_min``, whichever is larger. Under a full outage every first attempt fails at once; only that
share of them gets a second try, so a gateway in front of a failing fleet adds at most ~20% load instead of
multiplying it by the attempt count.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fedinf.config import Retries
from fedinf.errors import BackendError, FedinfError, StreamInterrupted


def retryable(exc: FedinfError) -> bool:
    """A failure another attempt may fix: upstream 429/5xx, connection errors and timeouts before any byte reached
    the caller. Rejections (4xx), policy errors and interrupted streams are never retried."""
    return isinstance(exc, BackendError) and exc.retryable and not isinstance(exc, StreamInterrupted)


def backoff_s(retry: int, policy: Retries, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**(retry-1))]`` for the ``retry``-th retry (1-based)."""
    if retry <= 0:
        return 0.0
    ceiling = min(policy.backoff_cap_ms, policy.backoff_base_ms * (2 ** (retry - 1)))
    return rng.uniform(0.0, ceiling) / 1000.0


@dataclass
class RetryBudget:
    """Counts requests and retries in flight; :meth:`try_acquire` admits a retry only within the budget.

    Not thread-safe by design: one budget lives in one event loop (one gateway process).
    """

    ratio: float = 0.2
    minimum: int = 3
    active_requests: int = 0
    active_retries: int = 0
    admitted: int = 0
    denied: int = 0

    @classmethod
    def from_policy(cls, policy: Retries) -> "RetryBudget":
        return cls(ratio=policy.budget_ratio, minimum=policy.budget_min)

    @property
    def limit(self) -> int:
        return max(self.minimum, int(self.ratio * self.active_requests))

    def try_acquire(self, *, reserve: int = 0) -> bool:
        """Admit one retry (or hedge) if the budget allows, keeping ``reserve`` slots free (hedges leave one for
        retries); the caller must :meth:`release` it when it ends."""
        if self.active_retries >= self.limit - reserve:
            self.denied += 1
            return False
        self.active_retries += 1
        self.admitted += 1
        return True

    def release(self) -> None:
        self.active_retries = max(0, self.active_retries - 1)

    def enter(self) -> None:
        self.active_requests += 1

    def leave(self) -> None:
        self.active_requests = max(0, self.active_requests - 1)
