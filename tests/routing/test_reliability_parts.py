"""The reliability building blocks on their own: backoff, retry budget, outlier ejection, breaker state machine,
load balancing, latency quantiles and the hedge race (no network here; the fault tests cover it end to end)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from fedinf.config import Breaker, OutlierDetection, Retries
from fedinf.errors import BackendRejected, BackendTimeout, BackendUnavailable, StreamInterrupted
from fedinf.routing import balancer
from fedinf.routing.breaker import CircuitBreaker
from fedinf.routing.health import OutlierState, may_eject
from fedinf.routing.hedge import LatencyWindow, Race
from fedinf.routing.retry import RetryBudget, backoff_s, retryable


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_full_jitter_backoff_bounds() -> None:
    policy = Retries()
    rng = random.Random(1)
    assert backoff_s(0, policy, rng) == 0.0
    for retry, cap in ((1, 0.025), (2, 0.05), (3, 0.1), (4, 0.2), (5, 0.25), (9, 0.25)):
        samples = [backoff_s(retry, policy, rng) for _ in range(400)]
        assert all(0 <= s <= cap + 1e-9 for s in samples)
        assert max(samples) > 0.8 * cap and min(samples) < 0.2 * cap  # spread over the whole range (full jitter)


def test_retryable_classes() -> None:
    assert retryable(BackendUnavailable("x")) and retryable(BackendTimeout("x"))
    assert not retryable(BackendRejected("x"))
    assert not retryable(StreamInterrupted("x"))


def test_retry_budget_is_a_share_of_active_requests_with_a_minimum() -> None:
    budget = RetryBudget(ratio=0.2, minimum=3)
    for _ in range(50):
        budget.enter()
    granted = sum(budget.try_acquire() for _ in range(40))
    assert granted == 10 and budget.denied == 30
    budget.release()
    assert budget.try_acquire()
    small = RetryBudget(ratio=0.2, minimum=3)
    small.enter()
    assert [small.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_retry_budget_also_admits_a_share_of_recent_requests() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, minimum=3, clock=clock)
    for _ in range(100):  # 100 requests started (and finished) in the last seconds
        budget.enter()
        budget.leave()
    held = [budget.try_acquire() for _ in range(25)]
    assert held.count(True) == 20, "20% of the recent requests may retry, even past the in-flight minimum"
    clock.t += 11  # the window moved on: no recent requests, 20 retries still in flight
    assert not budget.try_acquire()
    for _ in range(20):
        budget.release()
    assert budget.try_acquire(), "the in-flight minimum always allows a few"


def test_hedges_have_their_own_budget() -> None:
    budget = RetryBudget(ratio=0.2, minimum=3)
    for _ in range(10):
        budget.enter()
    assert [budget.try_acquire_hedge() for _ in range(4)] == [True, True, True, False]
    assert budget.try_acquire(), "hedges in flight do not use up the retries' room"
    budget.release_hedge()
    assert budget.try_acquire_hedge()


def test_outlier_ejection_grows_and_respects_the_share() -> None:
    policy = OutlierDetection(consecutive_failures=3, base_ejection_s=10, max_ejection_s=25, max_ejected_share=0.5)
    states = [OutlierState() for _ in range(3)]
    now = 0.0

    def fail(i: int, times: int) -> bool:
        out = False
        for _ in range(times):
            out = states[i].record(False, now, policy, lambda: may_eject(states, now, policy.max_ejected_share))
        return out

    assert not fail(0, 2) and fail(0, 1)
    assert states[0].ejected(now) and states[0].ejected_until == 10
    assert not fail(1, 3), "a second ejection of 3 replicas would pass the 50% share"
    assert not states[1].ejected(now)
    now = 11.0  # replica 0 is back; failing again doubles its ejection
    assert fail(0, 3) and states[0].ejected_until == now + 20
    now = 40.0
    assert fail(0, 3) and states[0].ejected_until == now + 25, "capped at max_ejection_s"
    single = [OutlierState()]
    assert not any(single[0].record(False, 0, policy, lambda: may_eject(single, 0, 1.0)) for _ in range(10)), \
        "the only replica of a model is never ejected"


def test_ejection_count_forgotten_after_good_service() -> None:
    policy = OutlierDetection(consecutive_failures=1, base_ejection_s=10, max_ejected_share=1)
    s = OutlierState()
    s.record(False, 0, policy, lambda: True)
    assert s.ejections == 1
    s.record(True, 15, policy, lambda: True)
    assert s.ejections == 1  # back at 10, not yet a full base time of good service
    s.record(True, 25, policy, lambda: True)
    assert s.ejections == 0


def test_breaker_closed_open_half_open_closed() -> None:
    clock = Clock()
    b = CircuitBreaker("m|r", Breaker(failure_rate=0.5, min_calls=4, window_s=10, open_s=5, half_open_probes=1),
                       clock)
    for ok in (True, False, True):
        b.record(b.acquire(), ok)
    assert b.state == "closed"
    b.record(b.acquire(), False)  # 2 of 4 failed = 50%
    assert b.state == "open" and b.acquire() is None and not b.available()
    clock.t += 5
    assert b.view() == "half_open"
    probe = b.acquire()
    assert probe == "probe" and b.acquire() is None, "one probe at a time"
    b.record(probe, False)
    assert b.state == "open" and b.opened == 2
    clock.t += 5
    probe = b.acquire()
    b.record(probe, True)
    assert b.state == "closed" and b.acquire() == "call"


def test_breaker_window_forgets_old_failures() -> None:
    clock = Clock()
    b = CircuitBreaker("m|r", Breaker(failure_rate=0.5, min_calls=4, window_s=10), clock)
    for _ in range(3):
        b.record(b.acquire(), False)
    clock.t += 11
    b.record(b.acquire(), False)
    assert b.state == "closed", "failures older than the window do not count"


def test_breaker_adopts_remote_opening() -> None:
    clock = Clock()
    b = CircuitBreaker("m|r", Breaker(), clock)
    b.adopt(clock.t + 3, 0, 0)
    assert b.state == "open" and b.acquire() is None
    clock.t += 3.1
    assert b.acquire() == "probe"


class Rep:
    def __init__(self, name: str, weight: float = 1.0) -> None:
        self.name = name
        self.weight = weight
        self.stats = balancer.ReplicaStats()


def test_balancer_prefers_fast_and_idle_replicas() -> None:
    rng = random.Random(3)
    reps = [Rep("fast"), Rep("slow"), Rep("busy")]
    reps[0].stats.ewma_ms, reps[1].stats.ewma_ms, reps[2].stats.ewma_ms = 10, 100, 10
    for r in reps:
        r.stats.last_sample = 0.0
    reps[2].stats.outstanding = 20
    firsts = Counter(balancer.order(reps, 0.0, rng)[0].name for _ in range(3000))
    # power of two choices: the better of each random pair goes first - fast wins both its pairs, the busy one
    # (score 21 x 10 ms) loses both, the slow one (1 x 100 ms) only beats the busy one
    assert firsts["fast"] > 0.6 * 3000
    assert firsts["busy"] == 0
    assert 0.25 * 3000 < firsts["slow"] < 0.4 * 3000
    order = balancer.order(reps, 0.0, rng)
    assert sorted(r.name for r in order) == ["busy", "fast", "slow"], "every replica stays as a fallback"


def test_balancer_honours_weights() -> None:
    rng = random.Random(5)
    reps = [Rep("heavy", 3.0), Rep("light", 1.0)]
    firsts = Counter(balancer.order(reps, 0.0, rng)[0].name for _ in range(4000))
    assert firsts["heavy"] > 2 * firsts["light"]


def test_failing_replica_is_deprioritised_then_heals() -> None:
    s = balancer.ReplicaStats()
    for _ in range(10):
        s.finished(False, 1.0, 0.0)
    healthy = balancer.ReplicaStats()
    assert s.score(1.0, 1.0, 0.0) > 3 * healthy.score(1.0, 1.0, 0.0)
    assert s.score(1.0, 1.0, 60.0) < 1.1 * healthy.score(1.0, 1.0, 60.0)


def test_latency_window_quantiles() -> None:
    w = LatencyWindow(size=100)
    assert w.quantile(0.95) is None
    for i in range(1, 101):
        w.add(float(i))
    assert w.quantile(0.95) == 95.0 and w.quantile(0.5) == 50.0


async def test_race_takes_the_first_good_answer_and_cancels_the_other() -> None:
    cancelled: list[str] = []

    async def answer(name: str, delay: float, fail: bool = False) -> str:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        if fail:
            raise BackendUnavailable(name)
        return name

    race = Race(answer("slow", 1.0), lambda: answer("hedge", 0.01), 0.05, _noop)
    assert await race.run() == "hedge" and race.hedged and cancelled == ["slow"]

    race = Race(answer("fast", 0.01), lambda: answer("never", 0.01), 0.2, _noop)
    assert await race.run() == "fast" and not race.hedged

    race = Race(answer("broken", 0.1, fail=True), lambda: answer("hedge", 0.2), 0.05, _noop)
    assert await race.run() == "hedge", "a failed primary waits for the hedge"

    race = Race(answer("p", 0.1, fail=True), lambda: answer("h", 0.1, fail=True), 0.05, _noop)
    with pytest.raises(BackendUnavailable, match="p"):
        await race.run()

    race = Race(answer("p2", 0.2), lambda: None, 0.05, _noop)
    assert await race.run() == "p2" and not race.hedged, "no hedge possible: wait for the primary"


async def _noop(_: object) -> None:
    return None
