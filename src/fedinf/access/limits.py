"""Rate limits and token budgets per key: exact in one process (:class:`MemoryLimiter`), shared through Redis
(:class:`~fedinf.access.redis_limits.RedisLimiter`) across replicas. Both implement the same semantics:

- requests per minute: a token bucket of capacity ``rpm`` refilled at ``rpm/60`` per second. A request takes one.
- tokens per minute: a bucket of capacity ``tpm``. Admission needs ``min(max(estimate, 1), tpm)`` in the bucket;
  :meth:`settle` then takes the actual tokens used, possibly driving the bucket into debt, which later requests wait
  out.
- token budget: tokens used in the current UTC calendar period (hour, day, ISO week, month); admission needs the
  used amount below the budget; :meth:`settle` adds the actual tokens.

:meth:`admit` checks all three before it takes anything, so a refused request consumes nothing. Refusals raise
:class:`RateLimited` with ``retry_after`` (seconds) and code ``rate_limit_exceeded``, ``token_rate_exceeded`` or
``budget_exceeded``.

Budgets across restarts: a :class:`MemoryLimiter` given a ``budget_source`` (``async (key_id, since) -> tokens``,
normally :class:`fedinf.access.usage.AuditUsage`, which sums the durable audit trail) seeds each key's budget the
first time the key is seen by this process, so restarting the gateway does not hand out a fresh budget. Redis keeps
its counters itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
import asyncio
from typing import Awaitable, Callable, Protocol

from fedinf.access.principal import Limits, Principal
from fedinf.errors import RateLimited


class Limiter(Protocol):
    async def admit(self, principal: Principal, *, est_tokens: int = 0) -> None: ...
    async def settle(self, principal: Principal, *, tokens: int) -> None: ...
    async def aclose(self) -> None: ...


def period_bounds(period: str, now: float) -> tuple[str, float]:
    """The id of the UTC calendar period containing ``now`` and the epoch second it ends."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    if period == "hour":
        start = t.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
        pid = start.strftime("%Y-%m-%dT%H")
    elif period == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        pid = start.strftime("%Y-%m-%d")
    elif period == "week":
        start = (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=7)
        iso = start.isocalendar()
        pid = f"{iso.year}-W{iso.week:02d}"
    else:
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        pid = start.strftime("%Y-%m")
    return pid, end.timestamp()


def _period_start(period: str, end: float) -> float:
    """The start of the period ending at ``end`` (periods are calendar units; step back one unit)."""
    t = datetime.fromtimestamp(end, tz=timezone.utc)
    if period == "hour":
        return (t - timedelta(hours=1)).timestamp()
    if period == "day":
        return (t - timedelta(days=1)).timestamp()
    if period == "week":
        return (t - timedelta(days=7)).timestamp()
    prev = t.replace(year=t.year - 1, month=12) if t.month == 1 else t.replace(month=t.month - 1)
    return prev.timestamp()


def refused(kind: int, retry_after: float, principal: Principal) -> RateLimited:
    """The RateLimited error for ``kind`` 1 (requests), 2 (tokens) or 3 (budget)."""
    retry_after = max(retry_after, 0.001)
    if kind == 1:
        return RateLimited(f"key {principal.key_id} exceeded {principal.limits.requests_per_minute} requests per "
                           "minute", retry_after=retry_after, code="rate_limit_exceeded")
    if kind == 2:
        return RateLimited(f"key {principal.key_id} exceeded {principal.limits.tokens_per_minute} tokens per minute",
                           retry_after=retry_after, code="token_rate_exceeded")
    return RateLimited(f"key {principal.key_id} used its budget of {principal.limits.token_budget} tokens this "
                       f"{principal.limits.budget_period}", retry_after=retry_after, code="budget_exceeded")


@dataclass(slots=True)
class _State:
    req: float = 0.0
    req_t: float = 0.0
    tok: float = 0.0
    tok_t: float = 0.0
    period: str = ""
    used: int = 0
    fresh: bool = True
    seeded: bool = False
    # the calendar period ``period`` names, as (kind, start, end) epoch seconds: while the wall clock stays inside
    # it, the period's id and end are known without working them out again
    span: tuple[str, float, float] = ("", 0.0, 0.0)


class MemoryLimiter:
    """Exact per-process limits. Each call runs without awaiting, so it is atomic on the event loop."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 budget_source: Callable[[str, float], Awaitable[int]] | None = None) -> None:
        self._clock = clock
        self._wall = wall
        self._state: dict[str, _State] = {}
        self._source = budget_source
        self._seeding: dict[str, asyncio.Future[None]] = {}

    async def _seed(self, key_id: str, st: _State, lim: Limits) -> None:
        """First sight of a key with a budget: add what the durable trail says it used this period."""
        pending = self._seeding.get(key_id)
        if pending is not None:
            await asyncio.shield(pending)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seeding[key_id] = fut
        try:
            pid, end = period_bounds(lim.budget_period, self._wall())
            start = _period_start(lim.budget_period, end)
            used = await self._source(key_id, start)  # type: ignore[misc]
            self._budget(st, lim)
            if st.period == pid:
                st.used += int(used)
            st.seeded = True
            fut.set_result(None)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()
            raise
        finally:
            del self._seeding[key_id]

    def _refill(self, st: _State, lim: Limits, now: float) -> None:
        rpm, tpm = lim.requests_per_minute, lim.tokens_per_minute
        if st.fresh:
            st.req, st.tok, st.req_t, st.tok_t, st.fresh = float(rpm or 0), float(tpm or 0), now, now, False
        if rpm:
            st.req = min(float(rpm), st.req + (now - st.req_t) * rpm / 60.0)
            st.req_t = now
        if tpm:
            st.tok = min(float(tpm), st.tok + (now - st.tok_t) * tpm / 60.0)
            st.tok_t = now

    def _budget(self, st: _State, lim: Limits) -> float:
        now = self._wall()
        kind, start, end = st.span
        if kind == lim.budget_period and start <= now < end:
            return end  # still the period of st.period
        pid, end = period_bounds(lim.budget_period, now)
        st.span = (lim.budget_period, _period_start(lim.budget_period, end), end)
        if st.period != pid:
            st.period, st.used = pid, 0
        return end

    async def admit(self, principal: Principal, *, est_tokens: int = 0) -> None:
        """Take one request (raises RateLimited and takes nothing when any limit is exhausted)."""
        lim = principal.limits
        if lim.unlimited:
            return
        st = self._state.setdefault(principal.key_id, _State())
        if lim.token_budget and self._source is not None and not st.seeded:
            await self._seed(principal.key_id, st, lim)
        now = self._clock()
        self._refill(st, lim, now)
        rpm, tpm = lim.requests_per_minute, lim.tokens_per_minute
        if rpm and st.req < 1.0:
            raise refused(1, (1.0 - st.req) * 60.0 / rpm, principal)
        if tpm:
            need = min(max(est_tokens, 1), tpm)
            if st.tok < need:
                raise refused(2, (need - st.tok) * 60.0 / tpm, principal)
        if lim.token_budget:
            end = self._budget(st, lim)
            if st.used >= lim.token_budget:
                raise refused(3, end - self._wall(), principal)
        if rpm:
            st.req -= 1.0

    async def settle(self, principal: Principal, *, tokens: int) -> None:
        """Charge the tokens a finished request used to the per-minute bucket and the budget."""
        lim = principal.limits
        if tokens <= 0 or not lim.counts_tokens:
            return
        st = self._state.setdefault(principal.key_id, _State())
        self._refill(st, lim, self._clock())
        if lim.tokens_per_minute:
            st.tok -= tokens
        if lim.token_budget:
            self._budget(st, lim)
            st.used += tokens

    def forget(self, key_id: str) -> None:
        self._state.pop(key_id, None)

    async def aclose(self) -> None:
        return None
