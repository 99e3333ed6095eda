"""Reliability state shared by every gateway process through Redis: circuit breakers and outlier ejections.

With ``reliability.redis_url`` set, :class:`RedisStateSync` runs in the background every
:data:`~fedinf.routing.breaker.SYNC_INTERVAL_S` (0.25 s) and, in one pipelined round trip:

- **breakers**: adds this process's call/failure counts to shared per-window counters
  (``{prefix}:breaker:{replica}:w:{window}``), publishes ``open_until`` when a breaker opened here, and lets every
  breaker adopt openings and the shared failure rate (:meth:`~fedinf.routing.breaker.CircuitBreaker.adopt`);
- **ejections**: publishes ``{prefix}:eject:{replica}`` (``"<until>|<ejection count>"``, expiring with the ejection)
  when outlier detection ejected a replica here, and adopts the ejections made by other processes, so a replica one
  process found failing is skipped by all of them within one sync interval instead of each process paying
  ``consecutive_failures`` failed calls. An adopted ejection still honours ``outlier.max_ejected_share`` as this
  process sees it, and ends by itself like a local one.

``{replica}`` is :attr:`Replica.key` (model, name and a digest of the URL), the same in every process serving the
same config. Times in Redis are wall-clock seconds (``time.time()``; keep the hosts' clocks in sync with NTP) and
are converted to each process's monotonic clock on adoption. The request path never waits on Redis; Redis being down
only means this state is local for a while (logged, never a request error).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fedinf.routing.breaker import SYNC_INTERVAL_S, CircuitBreaker
from fedinf.routing.health import may_eject

if TYPE_CHECKING:
    from fedinf.config import OutlierDetection
    from fedinf.routing.pool import Replica

log = logging.getLogger("fedinf.sync")


class RedisStateSync:
    """Background loop sharing breakers and ejections of ``replicas`` through Redis at ``url`` (redis-py asyncio).

    ``siblings(model_id)`` returns the replicas of a model (for the ejection cap); ``clock`` is the monotonic clock
    ejections are kept in (the pool's)."""

    def __init__(self, url: str, replicas: Sequence["Replica"], *, outlier: "OutlierDetection",
                 siblings: Callable[[str], Sequence["Replica"]], clock: Callable[[], float] = time.monotonic,
                 prefix: str = "fedinf", interval_s: float = SYNC_INTERVAL_S) -> None:
        self.url = url
        self.replicas = list(replicas)
        self.outlier = outlier
        self.siblings = siblings
        self.clock = clock
        self.prefix = prefix
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        self.rounds = 0
        self.errors = 0
        self.adopted_ejections = 0

    def start(self) -> None:
        if self._task is None and self.replicas:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="fedinf-state-sync")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._client is not None:
            try:
                await self.sync_once()  # flush the last counts
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass
            client, self._client = self._client, None
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001
                pass

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync_once()
                self.rounds += 1
            except Exception as exc:  # noqa: BLE001 - Redis down: state stays local, try again next round
                self.errors += 1
                if self.errors in (1, 10) or self.errors % 100 == 0:
                    log.warning("reliability state sync with Redis failed (%d times): %r", self.errors, exc)
            await asyncio.sleep(self.interval_s)

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return self._client

    async def sync_once(self) -> None:
        """Push local counts, openings and ejections; pull the shared ones; merge."""
        pipe = self._redis().pipeline(transaction=False)
        wall, mono = time.time(), self.clock()
        plan: list[tuple["Replica", int, int]] = []
        for rep in self.replicas:
            b_at = self._push_breaker(pipe, rep.breaker) if rep.breaker is not None else -1
            e_at = self._push_ejection(pipe, rep, wall, mono)
            plan.append((rep, b_at, e_at))
        results = await pipe.execute()
        wall, mono = time.time(), self.clock()
        for rep, b_at, e_at in plan:
            if rep.breaker is not None:
                self._pull_breaker(rep.breaker, results[b_at:b_at + 3])
            self._pull_ejection(rep, results[e_at], wall, mono)

    # ------------------------------------------------------------------ breakers

    def _push_breaker(self, pipe: Any, b: CircuitBreaker) -> int:
        """Queue the breaker's writes and reads; return where its 3 read results start."""
        win = b.policy.window_s
        bucket = int(b.clock() // win)
        base = f"{self.prefix}:breaker:{b.name}"
        cur = f"{base}:w:{bucket}"
        if b.pending_calls:
            calls, fails = b.pending_calls, b.pending_failures
            b.pending_calls = b.pending_failures = 0
            pipe.hincrby(cur, "calls", calls)
            pipe.hincrby(cur, "fails", fails)
            pipe.expire(cur, int(win * 3) + 1)
        if b.publish_open_until is not None:
            until, b.publish_open_until = b.publish_open_until, None
            pipe.set(f"{base}:open_until", repr(until), px=max(1, int((until - b.clock()) * 1000)))
        start = len(pipe.command_stack)
        pipe.get(f"{base}:open_until")
        pipe.hmget(cur, "calls", "fails")
        pipe.hmget(f"{base}:w:{bucket - 1}", "calls", "fails")
        return start

    @staticmethod
    def _pull_breaker(b: CircuitBreaker, got: list[Any]) -> None:
        raw_until, cur, prev = got
        calls = sum(int(x or 0) for x in (cur[0], prev[0]))
        fails = sum(int(x or 0) for x in (cur[1], prev[1]))
        b.adopt(float(raw_until) if raw_until else None, calls, fails)

    # ------------------------------------------------------------------ ejections

    def _push_ejection(self, pipe: Any, rep: "Replica", wall: float, mono: float) -> int:
        key = f"{self.prefix}:eject:{rep.key}"
        state = rep.outlier
        if state.publish:
            state.publish = False
            left = state.ejected_until - mono
            if left > 0:
                pipe.set(key, f"{wall + left!r}|{state.ejections}", px=max(1, int(left * 1000)))
        start = len(pipe.command_stack)
        pipe.get(key)
        return start

    def _pull_ejection(self, rep: "Replica", raw: Any, wall: float, mono: float) -> None:
        if not raw:
            return
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        until_s, _, count_s = text.partition("|")
        try:
            left, count = float(until_s) - wall, int(count_s or 1)
        except ValueError:
            return
        state = rep.outlier
        if left <= 0 or mono + left <= state.ejected_until + 0.05:
            return  # over, or what this process already knows (its own publication included)
        siblings = [r.outlier for r in self.siblings(rep.model_id)]
        if not state.ejected(mono) and not may_eject(siblings, mono, self.outlier.max_ejected_share):
            return
        state.adopt(mono + left, count)
        self.adopted_ejections += 1
        log.warning("replica %s of %s ejected for %.1fs by another gateway process", rep.name, rep.model_id, left)
