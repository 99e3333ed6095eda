"""What a gateway does when Redis is down (documented in docs/deployment.md): rate-limited keys fail closed with
503 ``limits_unavailable``; keys without limits never touch Redis and keep working; breaker and ejection sharing
turn local without failing requests."""

from __future__ import annotations

import socket

import pytest

from fedinf.access import Limits, Principal
from fedinf.access.redis_limits import RedisLimiter
from fedinf.errors import ServiceUnavailable


def dead_redis() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


async def test_limits_fail_closed_when_redis_is_down() -> None:
    lim = RedisLimiter(dead_redis(), prefix="fedinf-down")
    try:
        limited = Principal(key_id="k1", tenant="t", roles=frozenset({"user"}),
                            limits=Limits(requests_per_minute=100))
        with pytest.raises(ServiceUnavailable) as info:
            await lim.admit(limited)
        assert info.value.code == "limits_unavailable" and info.value.status_code == 503
        await lim.admit(Principal(key_id="k2", tenant="t", roles=frozenset({"user"})))  # no limits: no Redis
    finally:
        await lim.aclose()


async def test_state_sync_turns_local_when_redis_is_down() -> None:
    from tests.faults.fault_harness import ZONES, build_gateway, model_yaml, upstreams

    cfg_tail = f"""
reliability:
  health_interval_s: 0
  redis_url: {dead_redis()}
"""
    async with upstreams(2) as ups:
        gw = build_gateway(ZONES + "models:" + model_yaml("pool", ups) + cfg_tail)
        async with gw:
            body = {"model": "pool", "messages": [{"role": "user", "content": "x"}]}
            for _ in range(3):
                assert (await gw.chat(body))["choices"]
            sync = gw.pool._sync
            assert sync is not None
            with pytest.raises(Exception):
                await sync.sync_once()
