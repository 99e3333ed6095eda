"""Outlier ejection shared through Redis: a replica ejected by one gateway process is skipped by the others."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.fault_harness import ZONES, build_gateway, chat_count, model_yaml, upstreams

pytestmark = pytest.mark.redis


async def test_an_ejection_is_adopted_by_the_other_process(redis_url, redis_prefix) -> None:
    reliability = f"""
reliability:
  health_interval_s: 0
  redis_url: {redis_url}
  redis_prefix: {redis_prefix}
  outlier: {{consecutive_failures: 3, base_ejection_s: 30, max_ejected_share: 0.5}}
  breaker: {{min_calls: 100000}}
  retries: {{max_attempts: 3, backoff_base_ms: 1, backoff_cap_ms: 2}}
"""
    async with upstreams(2) as ups:
        cfg = ZONES + "models:" + model_yaml("pool", ups) + reliability
        one, two = build_gateway(cfg), build_gateway(cfg)
        bad = ups[0]
        async with one, two:
            bad.fail(503)
            body = {"model": "pool", "messages": [{"role": "user", "content": "x"}]}
            r0 = one.pool.replicas["pool"][0]
            for _ in range(30):  # bursts: outstanding requests spread the load over both replicas
                await asyncio.gather(*(one.chat(body) for _ in range(8)), return_exceptions=True)
                if r0.outlier.ejected(one.pool.clock()):
                    break
            assert r0.outlier.ejected(one.pool.clock()), "the first process ejected the failing replica"
            t0 = time.monotonic()
            r0_two = two.pool.replicas["pool"][0]
            while not r0_two.outlier.ejected(two.pool.clock()) and time.monotonic() - t0 < 3:
                await asyncio.sleep(0.02)
            assert r0_two.outlier.ejected(two.pool.clock()), "the second process adopted the ejection"
            assert r0_two.outlier.ejected_until - two.pool.clock() > 25  # with the time left, not a fresh one
            assert two.pool.status()["pool"]["r0"]["ejected"]
            seen = chat_count(bad)
            for _ in range(10):
                await two.chat(body)
            assert chat_count(bad) == seen, "the second process sent nothing to the ejected replica"
            assert two.pool._sync is not None and two.pool._sync.adopted_ejections == 1
