"""The backend pool on its own: which replicas a model has and in what order they are tried (breakers, outlier
ejection, panic mode), warm-up, graceful drain and the outcome bookkeeping the executor reports into it."""

from __future__ import annotations

import asyncio
import random

from fedinf.backends.fake import FakeBackend
from fedinf.config import parse_config
from fedinf.network import Network
from fedinf.routing.pool import BackendPool

CONFIG = """
zones:
  cloud: {kind: cloud, clearance: public}
reliability:
  health_interval_s: 0
  breaker: {min_calls: 2, failure_rate: 0.5, open_s: 60}
  outlier: {consecutive_failures: 2, base_ejection_s: 60, max_ejected_share: 1.0}
models:
  - id: m
    backend: fake
    zone: cloud
    license: MIT
    endpoints: [{name: r0, url: "http://10.0.0.1/v1"}, {name: r1, url: "http://10.0.0.2/v1"},
                {name: r2, url: "http://10.0.0.3/v1"}]
  - {id: forbidden, backend: fake, zone: cloud, license: CC-BY-NC-4.0}
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def build() -> tuple[BackendPool, Clock]:
    pool = BackendPool.build(Network.build(parse_config(CONFIG, source="t.yaml")))
    clock = Clock()
    pool.clock, pool.rng = clock, random.Random(7)
    for reps in pool.replicas.values():
        for rep in reps:
            assert rep.breaker is not None
            rep.breaker.clock = clock
    return pool, clock


def names(reps: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(r.name for r in reps)


def test_one_backend_per_endpoint_and_none_for_unlicensed_models() -> None:
    pool, _ = build()
    assert sorted(pool.replicas) == ["m"]  # a model whose license forbids serving is never instantiated
    assert [r.name for r in pool.replicas["m"]] == ["r0", "r1", "r2"]
    assert all(isinstance(r.backend, FakeBackend) for r in pool.replicas["m"])
    assert all("10.0.0" not in r.key for r in pool.replicas["m"])  # identities never carry the URL
    assert names(pool.order("m")) == ["r0", "r1", "r2"]
    assert pool.order("unknown") == []


def test_an_open_breaker_takes_its_replica_out_and_never_comes_back_in_panic() -> None:
    pool, _ = build()
    r0 = pool.replicas["m"][0]
    for _ in range(2):
        permit = r0.breaker.acquire() if r0.breaker else None
        pool.started(r0)
        pool.finished(r0, False, 5.0, permit=permit)
    assert r0.breaker is not None and not r0.breaker.available()
    assert names(pool.order("m")) == ["r1", "r2"]
    assert [r.name for r in pool.refused("m")] == ["r0"]
    for rep in pool.replicas["m"][1:]:  # everyone else unhealthy: panic mode, but never past an open breaker
        rep.healthy = False
    assert names(pool.order("m")) == ["r1", "r2"]


def test_outliers_are_ejected_for_a_while() -> None:
    pool, clock = build()
    r1 = pool.replicas["m"][1]
    ejected: list[str] = []
    pool.listeners.append(lambda event, rep: ejected.append(f"{event}:{rep.name}"))
    for _ in range(2):
        pool.started(r1)
        pool.finished(r1, False, 5.0, permit=None, counts=True)
    assert ejected == ["ejected:r1"]
    assert "r1" not in names(pool.order("m"))
    clock.t += 61
    assert "r1" in names(pool.order("m"))


def test_outcomes_feed_balancing_stats_and_latency_windows() -> None:
    pool, _ = build()
    rep = pool.replicas["m"][2]
    pool.started(rep)
    assert rep.stats.outstanding == 1
    pool.finished(rep, True, 12.0, permit="call")
    assert rep.stats.outstanding == 0 and rep.stats.calls == 1
    assert len(pool.latency["m"]) == 1
    pool.started(rep)
    pool.finished(rep, True, 3.0, permit="call", keep_outstanding=True)  # a stream goes on after its first chunk
    assert rep.stats.outstanding == 1
    pool.stream_ended(rep, ok=True)
    assert rep.stats.outstanding == 0
    status = pool.status()["m"]["r2"]
    assert status["calls"] == 2 and status["breaker"] == "closed"


async def test_warm_up_loads_every_backend() -> None:
    pool, _ = build()
    loaded: list[str] = []
    for rep in pool.replicas["m"]:
        async def load(name: str = rep.name) -> None:
            loaded.append(name)
        rep.backend.load = load  # type: ignore[method-assign]
    await pool.warm_up()
    assert sorted(loaded) == ["r0", "r1", "r2"]


async def test_drain_waits_for_requests_in_flight() -> None:
    pool, _ = build()
    await pool.start()
    pool.enter()
    drained = asyncio.create_task(pool.drain(5.0))
    await asyncio.sleep(0.05)
    assert pool.closing and not drained.done()
    pool.leave()
    assert await asyncio.wait_for(drained, 1.0) is True
    pool.enter()
    assert await pool.drain(0.05) is False  # still one in flight when the grace ran out
    pool.leave()
    await pool.aclose(0.1)
