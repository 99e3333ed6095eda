"""Load balancing across the replicas of one model: least outstanding requests, latency-aware, weighted, with the
power of two choices.

Each replica keeps :class:`ReplicaStats`: requests in flight, an EWMA of successful latencies and an EWMA of the
success rate. Its *score* (lower is better) is::

    (outstanding + 1) * latency_estimate / (weight * success_rate**2)

The first replica to try is the better of two drawn at random (weighted by ``weight``): the power of two choices
avoids the herd behaviour of always taking the global minimum with stale numbers. The other replicas follow by
score, as fallbacks. A replica that has not been measured recently drifts back toward the best latency of its
model (half-life :data:`DECAY_HALF_LIFE_S`), and its success rate heals toward 1 the same way, so a replica that was
slow or failing once gets traffic again and is re-measured.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

EWMA_ALPHA = 0.3
SUCCESS_ALPHA = 0.1
DECAY_HALF_LIFE_S = 5.0
MIN_SUCCESS = 0.05


@dataclass(slots=True)
class ReplicaStats:
    """Live numbers of one replica (mutated by the executor, read by the balancer)."""

    outstanding: int = 0
    ewma_ms: float | None = None
    success: float = 1.0
    last_sample: float = 0.0
    calls: int = 0
    failures: int = 0
    last_failure: float = 0.0

    def started(self) -> None:
        self.outstanding += 1

    def finished(self, ok: bool, latency_ms: float, now: float, *, count_latency: bool = True) -> None:
        """Record the end of one call. Failed calls lower the success EWMA; their latency counts only when slower
        than the estimate (a fast error must not make a failing replica look attractive)."""
        self.outstanding = max(0, self.outstanding - 1)
        self.calls += 1
        self.success += SUCCESS_ALPHA * ((1.0 if ok else 0.0) - self.success)
        if not ok:
            self.failures += 1
            self.last_failure = now
        if count_latency and (ok or (self.ewma_ms is not None and latency_ms > self.ewma_ms)):
            self.ewma_ms = latency_ms if self.ewma_ms is None else self.ewma_ms + EWMA_ALPHA * (latency_ms - self.ewma_ms)
            self.last_sample = now

    def latency_estimate(self, floor_ms: float, now: float) -> float:
        """EWMA latency, decayed toward ``floor_ms`` (the model's best) while no new sample arrives."""
        if self.ewma_ms is None:
            return floor_ms
        age = max(0.0, now - self.last_sample)
        keep = math.pow(0.5, age / DECAY_HALF_LIFE_S)
        return floor_ms + (max(self.ewma_ms, floor_ms) - floor_ms) * keep

    def success_estimate(self, now: float) -> float:
        """Success-rate EWMA, healing toward 1 while no failure happens (same half-life as latency)."""
        keep = math.pow(0.5, max(0.0, now - self.last_failure) / DECAY_HALF_LIFE_S)
        return 1.0 - (1.0 - self.success) * keep

    def score(self, weight: float, floor_ms: float, now: float) -> float:
        lat = max(self.latency_estimate(floor_ms, now), 0.01)
        return (self.outstanding + 1) * lat / (weight * max(self.success_estimate(now), MIN_SUCCESS) ** 2)


class Balanced(Protocol):
    stats: ReplicaStats
    weight: float


def order(replicas: Sequence[Balanced], now: float, rng: random.Random) -> list[Balanced]:
    """The try order: a power-of-two-choices pick first, then the rest by ascending score."""
    n = len(replicas)
    if n <= 1:
        return list(replicas)
    known = [r.stats.ewma_ms for r in replicas if r.stats.ewma_ms is not None]
    floor = min(known) if known else 1.0
    scores = {id(r): r.stats.score(r.weight, floor, now) for r in replicas}
    a, b = _two_weighted(replicas, rng)
    first = a if scores[id(a)] <= scores[id(b)] else b
    rest = sorted((r for r in replicas if r is not first), key=lambda r: scores[id(r)])
    return [first, *rest]


def _two_weighted(replicas: Sequence[Balanced], rng: random.Random) -> tuple[Balanced, Balanced]:
    """Two distinct replicas drawn with probability proportional to weight."""
    weights = [r.weight for r in replicas]
    i = _draw(weights, rng)
    rest_w = weights[:i] + weights[i + 1:]
    j = _draw(rest_w, rng)
    j = j if j < i else j + 1
    return replicas[i], replicas[j]


def _draw(weights: Sequence[float], rng: random.Random) -> int:
    total = sum(weights)
    x = rng.random() * total
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if x < acc:
            return i
    return len(weights) - 1
