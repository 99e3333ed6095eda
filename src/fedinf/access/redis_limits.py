"""Rate limits and budgets shared by every replica through Redis (same semantics as
:class:`~fedinf.access.limits.MemoryLimiter`).

Each check is one Lua script, executed atomically by Redis, reading the time from Redis itself (``TIME``), so
concurrent requests from any number of processes never lose an update and replica clocks do not matter. Keys:
``{prefix}:rl:{key_id}`` (a hash holding both buckets, expiring after 2 idle minutes) and
``{prefix}:budget:{key_id}:{period}`` (a counter expiring a day after its period ends).
"""

from __future__ import annotations

import time
from typing import Any

from fedinf.access.limits import period_bounds, refused
from fedinf.access.principal import Principal
from fedinf.errors import ConfigError, ServiceUnavailable

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm, tpm, est, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 'r', 'rt', 'k', 'kt')
local r, k = 0, 0
if rpm > 0 then
  r = tonumber(st[1])
  if r == nil then r = rpm else r = math.min(rpm, r + (now - tonumber(st[2])) * rpm / 60) end
  if r < 1 then return {1, tostring((1 - r) * 60 / rpm)} end
end
if tpm > 0 then
  k = tonumber(st[3])
  if k == nil then k = tpm else k = math.min(tpm, k + (now - tonumber(st[4])) * tpm / 60) end
  local need = math.min(math.max(est, 1), tpm)
  if k < need then return {2, tostring((need - k) * 60 / tpm)} end
end
if budget > 0 then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= budget then return {3, ARGV[5]} end
end
if rpm > 0 then redis.call('HSET', KEYS[1], 'r', tostring(r - 1), 'rt', tostring(now)) end
if tpm > 0 then redis.call('HSET', KEYS[1], 'k', tostring(k), 'kt', tostring(now)) end
redis.call('EXPIRE', KEYS[1], 120)
return {0, '0'}
"""

_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tpm, tokens, budget, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if tpm > 0 then
  local st = redis.call('HMGET', KEYS[1], 'k', 'kt')
  local k = tonumber(st[1])
  if k == nil then k = tpm else k = math.min(tpm, k + (now - tonumber(st[2])) * tpm / 60) end
  redis.call('HSET', KEYS[1], 'k', tostring(k - tokens), 'kt', tostring(now))
  redis.call('EXPIRE', KEYS[1], 120)
end
if budget > 0 then
  redis.call('INCRBY', KEYS[2], tokens)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return 0
"""


class RedisLimiter:
    """Limits shared through Redis at ``url`` (``redis://host:port/db``). Redis errors fail closed (503)."""

    def __init__(self, url: str, *, prefix: str = "fedinf", max_connections: int = 32) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ConfigError("shared rate limits need the redis extra: pip install 'fedinf[redis]'") from exc
        # a blocking pool: a burst waits for a free connection instead of failing
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10)
        self._redis: Any = aioredis.Redis(connection_pool=pool)
        self._prefix = prefix
        self._admit = self._redis.register_script(_ADMIT)
        self._settle = self._redis.register_script(_SETTLE)

    def _keys(self, principal: Principal) -> tuple[list[str], float]:
        pid, end = period_bounds(principal.limits.budget_period, time.time())
        p, kid = self._prefix, principal.key_id
        return [f"{p}:rl:{kid}", f"{p}:budget:{kid}:{pid}"], end

    async def admit(self, principal: Principal, *, est_tokens: int = 0) -> None:
        lim = principal.limits
        if lim.unlimited:
            return
        keys, end = self._keys(principal)
        args: list[int | str] = [lim.requests_per_minute or 0, lim.tokens_per_minute or 0, max(est_tokens, 0),
                lim.token_budget or 0, f"{max(end - time.time(), 0.001):.3f}"]
        try:
            kind, retry = await self._admit(keys=keys, args=args)
        except Exception as exc:  # noqa: BLE001 - redis-py raises many kinds
            raise ServiceUnavailable(f"rate-limit store unavailable: {type(exc).__name__}",
                                     code="limits_unavailable") from exc
        if int(kind):
            raise refused(int(kind), float(retry), principal)

    async def settle(self, principal: Principal, *, tokens: int) -> None:
        lim = principal.limits
        if tokens <= 0 or not lim.counts_tokens:
            return
        keys, end = self._keys(principal)
        ttl = int(end - time.time()) + 86_400
        try:
            await self._settle(keys=keys, args=[lim.tokens_per_minute or 0, int(tokens), lim.token_budget or 0, ttl])
        except Exception as exc:  # noqa: BLE001
            raise ServiceUnavailable(f"rate-limit store unavailable: {type(exc).__name__}",
                                     code="limits_unavailable") from exc

    async def reset(self, key_id: str) -> None:
        """Delete ``key_id``'s counters (tests, and an admin resetting a key's limits)."""
        keys = [k async for k in self._redis.scan_iter(match=f"{self._prefix}:*:{key_id}*")]
        if keys:
            await self._redis.delete(*keys)

    async def aclose(self) -> None:
        await self._redis.aclose()
