"""Retry policy: which failures may be retried, full-jitter backoff, and the retry budget.

The budget (:class:`RetryBudget`) keeps retries a bounded share of the traffic: under a full outage every first
attempt fails; only ~20% of them get a second try, so a gateway in front of a failing fleet adds a fifth to the load
instead of multiplying it by the attempt count.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

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


WINDOW_S = 10


@dataclass
class RetryBudget:
    """Admits retries and hedges so that they stay a bounded share of the traffic.

    A retry is admitted while the retries *in flight* are under ``ratio`` of the requests in flight (at least
    ``minimum``: Envoy's budget), or while the retries sent in the last :data:`WINDOW_S` seconds are under ``ratio``
    of the requests started in that time (Finagle's): the first absorbs bursts of slow failures, the second bursts
    of fast ones, and neither lets retries multiply the load under an outage. Hedges have a budget of the same size
    of their own, so hedging never takes retries' room. Not thread-safe by design: one budget per event loop.
    """

    ratio: float = 0.2
    minimum: int = 3
    clock: Callable[[], float] = time.monotonic
    active_requests: int = 0
    active_retries: int = 0
    active_hedges: int = 0
    admitted: int = 0
    denied: int = 0
    _requests: deque[list[float]] = field(default_factory=deque, repr=False)  # [second, count] buckets
    _retries: deque[list[float]] = field(default_factory=deque, repr=False)

    @classmethod
    def from_policy(cls, policy: Retries) -> "RetryBudget":
        return cls(ratio=policy.budget_ratio, minimum=policy.budget_min)

    @property
    def limit(self) -> int:
        """Retries (or hedges) allowed in flight now."""
        return max(self.minimum, int(self.ratio * self.active_requests))

    def try_acquire(self) -> bool:
        """Admit one retry if the budget allows; the caller must :meth:`release` it when it ends."""
        now = self.clock()
        if self.active_retries < self.limit or \
                _total(self._retries, now) + 1 <= self.ratio * _total(self._requests, now):
            self.active_retries += 1
            self.admitted += 1
            _add(self._retries, now)
            return True
        self.denied += 1
        return False

    def release(self) -> None:
        self.active_retries = max(0, self.active_retries - 1)

    def try_acquire_hedge(self) -> bool:
        """Admit one hedge: at most :attr:`limit` hedges in flight (a budget separate from retries')."""
        if self.active_hedges >= self.limit:
            return False
        self.active_hedges += 1
        return True

    def release_hedge(self) -> None:
        self.active_hedges = max(0, self.active_hedges - 1)

    def enter(self) -> None:
        self.active_requests += 1
        _add(self._requests, self.clock())

    def leave(self) -> None:
        self.active_requests = max(0, self.active_requests - 1)


def _add(buckets: deque[list[float]], now: float) -> None:
    second = float(int(now))
    if buckets and buckets[-1][0] == second:
        buckets[-1][1] += 1
    else:
        buckets.append([second, 1.0])


def _total(buckets: deque[list[float]], now: float) -> float:
    horizon = now - WINDOW_S
    while buckets and buckets[0][0] < horizon:
        buckets.popleft()
    return sum(b[1] for b in buckets)
