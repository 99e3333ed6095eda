"""Replicas under faults: ejection and recovery, circuit breakers (local and shared through Redis), the retry budget
under a full outage, and hedging - each with assertions on what the client and the upstreams saw."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import pytest

from fault_harness import ZONES, build_gateway, chat_count, model_yaml, serve, upstreams, user


def route_config(ups: list, reliability: str, *, extra_models: str = "", routes: str = "") -> str:
    return (ZONES + "models:" + model_yaml("pool", ups, read_s=1.0) + extra_models
            + f"routes:\n  m: {{models: [pool]}}\n{routes}" + reliability)


async def burst(gw, n: int, **fedinf) -> list:
    return await asyncio.gather(*(gw.chat(user(f"burst {i}", **fedinf), timeout=15) for i in range(n)))


async def test_failing_replica_is_ejected_traffic_moves_and_it_comes_back() -> None:
    reliability = """
reliability:
  health_interval_s: 0
  outlier: {consecutive_failures: 3, base_ejection_s: 3, max_ejected_share: 0.5}
  breaker: {min_calls: 100000}
  retries: {backoff_base_ms: 1, backoff_cap_ms: 2}
"""
    async with upstreams(3) as ups, serve(route_config(ups, reliability)) as gw:
        bad = ups[0]
        bad.fail(503)
        replies = []
        for _ in range(6):  # bursts: outstanding requests spread the load over every replica
            replies += await burst(gw, 8)
        assert all(r.status == 200 for r in replies), [r.body for r in replies if r.status != 200]
        seen_by_bad = chat_count(bad)
        assert 3 <= seen_by_bad <= 6, f"the failing replica should be ejected after 3 failures, saw {seen_by_bad}"
        status, text = await gw.get("/readyz")
        state = json.loads(text)["replicas"]["pool"]["r0"]
        assert state["ejected"] and state["ejections"] == 1 and status == 200
        more = await burst(gw, 16)
        assert all(r.status == 200 for r in more) and chat_count(bad) == seen_by_bad, "ejected: no traffic"
        assert all(r.headers["x-fedinf-attempts"] == "1" for r in more)

        bad.clear()  # it recovers; after the ejection time it takes traffic again
        await asyncio.sleep(3.1)
        back = []
        for _ in range(4):
            back += await burst(gw, 8)
        assert all(r.status == 200 for r in back)
        assert chat_count(bad) > seen_by_bad, "the recovered replica gets traffic again"
        assert any(r.headers["x-fedinf-replica"] == "r0" for r in back)
        state = json.loads((await gw.get("/readyz"))[1])["replicas"]["pool"]["r0"]
        assert not state["ejected"]
        metrics = (await gw.get("/metrics"))[1]
        assert 'fedinf_replica_ejected{model="pool",replica="r0"} 0.0' in metrics


async def test_active_health_checks_take_a_dead_replica_out() -> None:
    reliability = """
reliability:
  health_interval_s: 0.1
  unhealthy_after: 2
  breaker: {min_calls: 100000}
"""
    async with upstreams(2) as ups, serve(route_config(ups, reliability)) as gw:
        ups[0].fail(503, scope="all")  # down: health endpoint and chat
        await asyncio.sleep(0.5)
        state = json.loads((await gw.get("/readyz"))[1])["replicas"]["pool"]
        assert not state["r0"]["healthy"] and state["r1"]["healthy"]
        before = chat_count(ups[0])
        replies = await burst(gw, 12)
        assert all(r.status == 200 and r.headers["x-fedinf-replica"] == "r1" for r in replies)
        assert chat_count(ups[0]) == before, "an unhealthy replica gets no requests"
        ups[0].clear()
        await asyncio.sleep(0.4)
        assert json.loads((await gw.get("/readyz"))[1])["replicas"]["pool"]["r0"]["healthy"]
    assert ups[0].stats["models"] >= 3, "the active checks really probed the endpoint"


async def test_breaker_opens_half_opens_and_closes() -> None:
    reliability = """
reliability:
  health_interval_s: 0
  retries: {max_attempts: 1}
  breaker: {failure_rate: 0.5, min_calls: 4, window_s: 10, open_s: 0.4, half_open_probes: 1}
"""
    async with upstreams(1) as ups, serve(route_config(ups, reliability)) as gw:
        up = ups[0]
        up.fail(500)
        for _ in range(4):
            r = await gw.chat(user("fail"))
            assert r.status == 503 and r.body["error"]["code"] == "backend_unavailable"
        assert chat_count(up) == 4
        r = await gw.chat(user("refused"))
        assert r.status == 503 and r.body["error"]["code"] == "circuit_open" and r.elapsed < 0.2
        assert chat_count(up) == 4, "an open breaker sends nothing upstream"
        assert "skipped:circuit_open" in r.headers["x-fedinf-attempt-log"]
        assert 'fedinf_breaker_state{model="pool",replica="r0"} 2.0' in (await gw.get("/metrics"))[1]

        await asyncio.sleep(0.45)  # half-open: one probe; it fails -> open again
        r = await gw.chat(user("probe fails"))
        assert r.status == 503 and chat_count(up) == 5
        r = await gw.chat(user("open again"))
        assert r.body["error"]["code"] == "circuit_open" and chat_count(up) == 5

        up.clear()
        await asyncio.sleep(0.45)  # half-open: the probe succeeds -> closed
        r = await gw.chat(user("probe ok"))
        assert r.status == 200 and chat_count(up) == 6
        replies = await burst(gw, 5)
        assert all(x.status == 200 for x in replies) and chat_count(up) == 11
        state = json.loads((await gw.get("/readyz"))[1])["replicas"]["pool"]["r0"]
        assert state["breaker"] == "closed"
        assert 'fedinf_breaker_state{model="pool",replica="r0"} 0.0' in (await gw.get("/metrics"))[1]


def _redis_or_skip() -> None:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")


@pytest.mark.redis
async def test_breaker_state_is_shared_through_redis() -> None:
    _redis_or_skip()
    reliability = """
reliability:
  health_interval_s: 0
  redis_url: redis://127.0.0.1:6379/0
  retries: {max_attempts: 1}
  breaker: {failure_rate: 0.5, min_calls: 4, open_s: 2}
"""
    async with upstreams(1) as ups:
        mid = f"shared-{uuid.uuid4().hex[:8]}"  # fresh keys in Redis
        cfg = (ZONES + "models:" + model_yaml(mid, ups) + reliability)
        one, two = build_gateway(cfg), build_gateway(cfg)
        async with one, two:
            ups[0].fail(503)
            body = {"model": mid, "messages": [{"role": "user", "content": "x"}]}
            for _ in range(4):
                with pytest.raises(Exception):
                    await one.chat(body)
            assert one.pool.replicas[mid][0].breaker.state == "open"
            seen = chat_count(ups[0])
            deadline = time.monotonic() + 3
            while two.pool.replicas[mid][0].breaker.state != "open" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert two.pool.replicas[mid][0].breaker.state == "open", "the other gateway process adopts the opening"
            with pytest.raises(Exception) as info:
                await two.chat(body)
            assert getattr(info.value, "code", None) == "circuit_open"
            assert chat_count(ups[0]) == seen, "the second gateway sent nothing to the failing endpoint"


async def test_retry_budget_caps_retries_under_a_full_outage() -> None:
    reliability = """
reliability:
  health_interval_s: 0
  outlier: {consecutive_failures: 100000}
  breaker: {min_calls: 100000}
  retries: {max_attempts: 3, budget_ratio: 0.2, budget_min: 3, backoff_base_ms: 25, backoff_cap_ms: 250}
"""
    n = 60
    async with upstreams(3) as ups, serve(route_config(ups, reliability)) as gw:
        for up in ups:
            up.fail(503)
        t0 = time.monotonic()
        replies = await burst(gw, n, timeout_s=5)
        elapsed = time.monotonic() - t0
        sent = sum(chat_count(up) for up in ups)
        assert all(r.status == 503 for r in replies), {r.status for r in replies}
        codes = {r.body["error"]["code"] for r in replies}
        assert codes <= {"backend_unavailable", "all_targets_failed", "retry_budget_exhausted"}, codes
        assert any("skipped:retry_budget_exhausted" in r.headers.get("x-fedinf-attempt-log", "") for r in replies)
        # without a budget: 3 attempts each = 180 upstream calls; with it, ~1.2x plus the minimum
        assert n <= sent <= int(n * 1.2) + 3 + 12, sent
        assert elapsed < 5
        metrics = (await gw.get("/metrics"))[1]
        denied = [line for line in metrics.splitlines() if line.startswith("fedinf_retry_budget_denied ")]
        assert denied and float(denied[0].split()[1]) > 0


async def test_hedging_cuts_the_tail_when_a_replica_is_slow() -> None:
    reliability = """
reliability:
  health_interval_s: 0
  breaker: {min_calls: 100000}
"""
    async with upstreams(2) as (slow, fast):
        slow.hang()  # the first target never answers (its handler counts the disconnect when we cancel)
        cfg = (ZONES + "models:" + model_yaml("slowm", [slow], read_s=5) + model_yaml("fastm", [fast])
               + "routes:\n  m: {models: [slowm, fastm], hedge_after_ms: 100}\n" + reliability)
        async with serve(cfg) as gw:
            hedged = [await gw.chat(user(f"one by one {i}", idempotent=True)) for i in range(8)]
            assert all(r.status == 200 for r in hedged)
            assert max(r.elapsed for r in hedged) < 0.8, [round(r.elapsed, 3) for r in hedged]
            assert all(r.headers["x-fedinf-model"] == "fastm" and r.headers.get("x-fedinf-hedged") == "true"
                       for r in hedged)
            log = hedged[0].headers["x-fedinf-attempt-log"]
            assert "first slowm@r0 cancelled" in log and "hedge fastm@r0 ok" in log, log
            await asyncio.sleep(0.1)
            assert slow.stats["disconnects"] >= 8, "the losing attempts were cancelled upstream"

            slow.clear()
            slow.slow(delay_ms=1500)
            plain = await gw.chat(user("not idempotent"), timeout=10)  # never hedged
            assert plain.status == 200 and plain.elapsed >= 1.4
            assert plain.headers["x-fedinf-model"] == "slowm" and "x-fedinf-hedged" not in plain.headers
            metrics = (await gw.get("/metrics"))[1]
            assert 'fedinf_hedges_total{model="fastm",outcome="won"} 8.0' in metrics

            # hedges have a budget: 12 at once, max(3, 20% of 12) = 3 hedges in flight, so only some are hedged (a
            # slot frees when a hedge answers); the others wait for their first attempt
            together = await burst(gw, 12, idempotent=True)
            assert all(r.status == 200 for r in together)
            n_hedged = sum(1 for r in together if r.headers.get("x-fedinf-hedged"))
            assert 2 <= n_hedged < 12, n_hedged
            assert all(r.elapsed >= 1.4 for r in together if not r.headers.get("x-fedinf-hedged"))


async def test_hedge_after_observed_p95() -> None:
    reliability = """
reliability:
  health_interval_s: 0
  hedge_min_samples: 10
  breaker: {min_calls: 100000}
"""
    async with upstreams(2) as (a, b):
        cfg = (ZONES + "models:" + model_yaml("am", [a]) + model_yaml("bm", [b])
               + "routes:\n  m: {models: [am, bm], hedge_after_ms: p95}\n" + reliability)
        async with serve(cfg) as gw:
            a.delay_ms = 20
            warm = [await gw.chat(user("warm", idempotent=True)) for _ in range(12)]
            assert all(r.status == 200 for r in warm)
            assert sum(r.headers["x-fedinf-model"] == "am" for r in warm) >= 9  # past p95 a few may be hedged
            delay = gw.gateway.pool.hedge_delay_s("am", "p95")
            assert delay is not None and 0.015 < delay < 0.2
            a.slow(delay_ms=2000, times=1)
            r = await gw.chat(user("tail", idempotent=True), timeout=10)
            assert r.status == 200 and r.headers["x-fedinf-model"] == "bm" and r.elapsed < 1.0


async def test_stream_hedge_takes_the_first_stream_to_start() -> None:
    async with upstreams(2) as (slow, fast):
        slow.slow(delay_ms=1500)
        cfg = (ZONES + "models:" + model_yaml("slowm", [slow], read_s=5) + model_yaml("fastm", [fast])
               + "routes:\n  m: {models: [slowm, fastm], hedge_after_ms: 50}\n"
               + "reliability: {health_interval_s: 0}\n")
        async with serve(cfg) as gw:
            r = await gw.chat({**user("stream hedge", idempotent=True), "stream": True}, timeout=10)
            assert r.status == 200 and r.events[-1] == "[DONE]" and r.text == "echo: stream hedge"
            assert r.elapsed < 0.8 and r.headers["x-fedinf-model"] == "fastm"


async def test_hedges_never_leave_the_eligible_set() -> None:
    async with upstreams(2) as (slow, cloud):
        slow.slow(delay_ms=600)
        cfg = (ZONES + "models:" + model_yaml("slowm", [slow]) + model_yaml("cloudm", [cloud], zone="cloud")
               + "routes:\n  m: {models: [slowm, cloudm], hedge_after_ms: 50}\nreliability: {health_interval_s: 0}\n")
        async with serve(cfg) as gw:
            r = await gw.chat(user("secret stuff", idempotent=True, data_class="confidential"), timeout=10)
            assert r.status == 200 and r.headers["x-fedinf-model"] == "slowm" and r.elapsed >= 0.55
            assert r.headers["x-fedinf-eligible"] == "slowm" and "x-fedinf-hedged" not in r.headers
            assert chat_count(cloud) == 0, "the cloud model is not cleared for confidential data: never hedged to"
            r = await gw.chat(user("public stuff", idempotent=True), timeout=10)
            assert r.headers["x-fedinf-model"] == "cloudm" and r.headers.get("x-fedinf-hedged") == "true"
